"""The SQL database (async): opens one store per ``@stored`` class over one executor and
one set of tables, and migrates, drops and inspects them.

The sync twin ``_sync/database.py`` is generated from this file by
``scripts/generate_sync.py``; edit this file, never the twin.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from persisty.backends.sql._async.commit import commit_stores
from persisty.backends.sql._async.executor import AsyncSqlExecutor
from persisty.backends.sql._async.outbox import with_outbox
from persisty.backends.sql._async.store import AsyncSqlStore
from persisty.backends.sql._async.tables import AsyncSqlTables
from persisty.backends.sql._meta_tables import META_TABLE, OUTBOX_TABLE
from persisty.backends.sql._table import TableSchema
from persisty.backends.sql.dialects import dialect_for
from persisty.errors import PersistyError, ValidationError
from persisty.model import StoreMeta
from persisty.store import AsyncDatabase, AsyncSqlAccess, AsyncStoreBase, WriteOp


class AsyncSqlDatabase(AsyncDatabase, AsyncSqlAccess):
    """``sqlite:///file.db`` (``sqlite://`` in memory), ``postgresql://user@host/db``,
    ``mysql://user@host/db`` (or ``mariadb://``): one table per store, named
    ``<namespace>_<store>``, created on first use.

    Options: ``pool_size`` (connections kept; 1 for SQLite in memory); for SQLite files
    ``timeout`` (the busy timeout in seconds, default 30), ``cache_mb`` (the page cache of
    each connection, default 32) and ``page_size`` (bytes per page of a new file, default
    4096).

    ``db.executor`` runs the statements (pool, transactions, error translation) and
    ``db.tables`` creates and migrates the tables; ``db.dialect`` is the engine's
    :class:`~persisty.backends.sql.Dialect`.

    Example::

        db = persisty.aio.connect("postgresql://postgres@127.0.0.1/app", namespace="t1")
        notes = db.store(Note)
        print(await db.plan_migration())   # what migrate() would do
        await db.migrate()
    """

    def __init__(
        self,
        url: str = "sqlite:///persisty.db",
        *,
        namespace: str | None = None,
        secret: bytes | str | None = None,
        pool_size: int | None = None,
        **options: Any,
    ) -> None:
        own_secret = not (secret or os.environ.get("PERSISTY_SECRET"))
        super().__init__(url, namespace=namespace, secret=secret)
        unknown = set(options) - {"timeout", "cache_mb", "page_size"}
        if unknown:
            raise ValidationError(
                f"unknown option {sorted(unknown)[0]!r}", field=sorted(unknown)[0]
            )
        page_size = options.get("page_size", 4096)
        if type(page_size) is not int or page_size not in [2**n for n in range(9, 17)]:
            raise ValidationError(
                f"page_size must be a power of two from 512 to 65536, not {page_size!r}",
                field="page_size",
            )
        self.dialect = dialect_for(url)
        self.sql_url = self.dialect.parse_url(url)
        self.executor = AsyncSqlExecutor(self.dialect, self.sql_url, options, pool_size)
        """Runs every statement of this database's stores."""
        self.tables = AsyncSqlTables(self.executor, self._keep_secret if own_secret else None)
        """Creates, checks and migrates this database's tables."""
        self.metadata = sa.MetaData()
        self.schemas: dict[str, TableSchema] = {}

    def _keep_secret(self, secret: bytes) -> None:
        self.pages.use_secret(secret)  # the page keys of every process of this database

    def _open(self, meta: StoreMeta) -> AsyncSqlStore:
        schema = TableSchema(meta, self.dialect, self.namespace, self.metadata)
        self.schemas[schema.name] = schema
        return AsyncSqlStore(meta, self.pages, schema, self.executor, self.tables, with_outbox)

    async def _commit_stores(
        self, groups: list[tuple[AsyncStoreBase[Any], list[WriteOp]]]
    ) -> list[list[PersistyError | None]]:
        return await commit_stores(self.executor, groups)

    def _bytes_column(self, cls: type[Any], attr: str) -> tuple[TableSchema, int]:
        """The schema of ``cls``'s store and the position of its ``attr`` column."""
        store = self.store(cls)
        assert isinstance(store, AsyncSqlStore)  # this database's own stores are
        schema = store.schema
        column = schema.by_name.get(attr)
        if column is None or len(schema.key_cols) != 1:
            raise ValidationError(
                f"{schema.name} has no column {attr!r} beside a one-attribute key", field=attr
            )
        return schema, schema.columns.index(column)

    async def insert_with_bytes(
        self, cls: type[Any], items: Sequence[Any], attr: str, values: Sequence[bytes]
    ) -> None:
        """See :class:`~persisty.store.AsyncSqlAccess` (one ``executemany``, one
        transaction)."""
        schema, at = self._bytes_column(cls, attr)
        await self.tables.ensure(schema)
        rows = [
            (*row[:at], value, *row[at + 1 :])
            for row, value in zip(schema.insert_rows(items), values, strict=True)
        ]
        executor = self.executor
        async with executor.connection(schema) as conn, executor.transaction(conn):
            await executor.run_many(conn, schema.sql_insert, rows, schema)

    async def read_bytes(
        self, cls: type[Any], keys: Sequence[str], attr: str
    ) -> list[bytes | None]:
        """See :class:`~persisty.store.AsyncSqlAccess` (one ``SELECT … IN (…)``)."""
        schema, at = self._bytes_column(cls, attr)
        if not keys:
            return []
        await self.tables.ensure(schema)
        key, column = schema.key_cols[0].quoted, schema.columns[at].quoted
        marks = ", ".join([self.dialect.ph] * len(keys))
        # quoted names of the model; the keys only as parameters
        sql = f"SELECT {key}, {column} FROM {schema.quoted} WHERE {key} IN ({marks})"
        rows: list[Any] = await self.executor.query(sql, list(keys), schema)
        found = {str(row[0]): row[1] for row in rows}
        return [None if (value := found.get(k)) is None else bytes(value) for k in keys]

    async def plan_migration(self) -> list[str]:
        """What :meth:`migrate` would do for the stores opened so far: SQL statements, and
        ``-- not applied: …`` lines for destructive differences (never applied)."""
        return [str(s) for s in await self.tables.plan(self.schemas.values())]

    async def migrate(self) -> list[str]:
        """Create missing tables, columns and indexes for the stores opened so far; return
        the plan (destructive differences are reported as ``-- not applied: …``)."""
        return await self.tables.migrate(self.schemas.values())

    def _schemas_of(self, cls: type[Any] | None) -> list[TableSchema]:
        if cls is None:
            return list(self.schemas.values())
        store = self.store(cls)
        assert isinstance(store, AsyncSqlStore)
        return [store.schema]

    async def drop(self, cls: type[Any] | None = None) -> None:
        """Drop the table of the store of ``cls`` with its sequence counters and its
        changes waiting in the outbox; without ``cls``, those of every store of this
        database's namespace (opened here or not: the meta table records every store table
        when it is created).

        Example::

            await db.drop(Note)
        """
        tables = self.tables
        driver = self.executor.driver
        quote = self.dialect.quote
        async with self.executor.connection() as conn:
            names = await self._tables_of(conn, cls)
            for name in names:
                if await tables.exists(conn, name):  # no DROP IF EXISTS notes
                    await driver.run(conn, f"DROP TABLE IF EXISTS {quote(name)}")
            rows = [(n,) for n in await tables.counters_of(conn, names)]
            rows += [(f"table:{n}",) for n in names]
            if await tables.exists(conn, META_TABLE):
                await driver.run_many(conn, tables.meta.sql_delete, rows)
            if OUTBOX_TABLE in tables.ready or await tables.exists(conn, OUTBOX_TABLE):
                await driver.run_many(conn, tables.outbox.sql_delete_store, [(n,) for n in names])
        tables.forget(names)

    async def _tables_of(self, conn: Any, cls: type[Any] | None) -> list[str]:
        """The table of the store of ``cls``; without ``cls``, every store table of the
        namespace: those recorded in the meta table and those opened here."""
        opened = [schema.name for schema in self._schemas_of(cls)]
        if cls is not None:
            return opened
        recorded = await self.tables.tables_of(conn, self.namespace)
        return list(dict.fromkeys([*recorded, *opened]))

    async def footprint(self, cls: type[Any] | None = None) -> list[str]:
        """The table of the store of ``cls`` (without ``cls``, of every store of the
        namespace) if it exists, its rows in ``persisty_meta`` (sequence counters, the
        record of the table) and its changes in the outbox."""
        found: list[str] = []
        tables = self.tables
        driver = self.executor.driver
        async with self.executor.connection() as conn:
            names = await self._tables_of(conn, cls)
            outbox = await tables.exists(conn, OUTBOX_TABLE)
            meta = await tables.exists(conn, META_TABLE)
            for name in names:
                if await tables.exists(conn, name):
                    found.append(f"table {name}")
                if meta and await driver.fetch(conn, tables.meta.sql_get, (f"table:{name}",)):
                    found.append(f"{META_TABLE} row table:{name}")
                if outbox:
                    rows = await driver.fetch(conn, tables.outbox.sql_count, (name,))
                    if rows and int(rows[0][0]):
                        found.append(f"{OUTBOX_TABLE}: {int(rows[0][0])} change(s) of {name}")
            found += [f"{META_TABLE} row {n}" for n in await tables.counters_of(conn, names)]
        return found

    async def drop_tables(self) -> None:
        """:meth:`drop` of every store opened so far (kept for existing callers)."""
        await self.drop()

    async def close(self) -> None:
        """Close every pooled connection."""
        await self.executor.close()
