"""The tables of a SQL database (async): the meta table and the page-key secret, each
store's table and indexes (created on first use, refused when columns are missing), the
outbox table, and migration plans.

The sync twin ``_sync/tables.py`` is generated from this file by
``scripts/generate_sync.py``; edit this file, never the twin.
"""

from __future__ import annotations

import asyncio
import os
import threading  # noqa: F401, RUF100 - the sync twin's lock
from collections.abc import Callable, Iterable
from typing import Any

from persisty.backends.sql._async.executor import AsyncSqlExecutor
from persisty.backends.sql._meta_tables import META_TABLE, OUTBOX_TABLE, MetaSchema, OutboxSchema
from persisty.backends.sql._migrate import Step, plan_table
from persisty.backends.sql._table import TableSchema
from persisty.errors import Conflict, Unavailable


class AsyncSqlTables:
    """What exists on the engine for one database, created when first needed.

    ``epoch`` grows whenever tables may have changed behind the stores' backs (a migration,
    a drop): a store whose epoch is older checks its table again before its next statement.

    ``on_secret``, when given, receives the page-key secret kept in the meta table (created
    by the first process that needs it).
    """

    def __init__(
        self, executor: AsyncSqlExecutor, on_secret: Callable[[bytes], None] | None = None
    ) -> None:
        self.executor = executor
        self.dialect = executor.dialect
        self.driver = executor.driver
        self.meta = MetaSchema(self.dialect)
        self.outbox = OutboxSchema(self.dialect)
        self.epoch = 0
        self.ready: set[str] = set()
        """The tables known to exist and to fit their stores."""
        self._on_secret = on_secret
        self._setup_done = False
        self._lock = asyncio.Lock()

    def forget(self, names: Iterable[str] | None = None) -> None:
        """Check the tables ``names`` (all when ``None``) again before their next use."""
        if names is None:
            self.ready.clear()
        else:
            self.ready.difference_update(names)
        self.epoch += 1

    async def setup(self) -> None:
        """The meta table and the page-key secret every process of this database shares.

        What exists is looked up first and only what is missing is created: MariaDB answers
        ``IF NOT EXISTS`` and ``INSERT IGNORE`` on existing things with notes, which the
        async driver prints and fetches with an extra ``SHOW WARNINGS`` round trip."""
        if self._setup_done:
            return
        driver = self.driver
        async with self.executor.connection() as conn:
            if not await self.exists(conn, META_TABLE):
                await driver.run(conn, self.meta.sql_create)
            if self.dialect.probe_sql is not None:
                self.dialect.probed(await driver.fetch(conn, self.dialect.probe_sql, ()))
            if self._on_secret is not None:
                rows = await driver.fetch(conn, self.meta.sql_get, ("secret",))
                if not rows:
                    try:
                        await driver.run(conn, self.meta.sql_add, ("secret", os.urandom(32).hex()))
                    except Exception as e:  # another process stored its secret first
                        if not isinstance(self.dialect.translate(e), Conflict):
                            raise
                    rows = await driver.fetch(conn, self.meta.sql_get, ("secret",))
                self._on_secret(bytes.fromhex(rows[0][0]))
        self._setup_done = True

    async def exists(self, conn: Any, table: str) -> bool:
        return bool(await self.driver.fetch(conn, self.dialect.introspect_sql()[0], (table,)))

    async def index_names(self, conn: Any, table: str) -> set[str]:
        rows = await self.driver.fetch(conn, self.dialect.introspect_sql()[1], (table,))
        return {str(r[0]).lower() for r in rows}

    async def columns(self, conn: Any, schema: TableSchema) -> dict[str, str]:
        """The columns of the store's table (name -> SQL type); empty when it is missing."""
        rows = await self.driver.fetch(conn, self.dialect.introspect_sql()[0], (schema.name,))
        return {str(r[0]): str(r[1]) for r in rows}

    async def ensure(self, schema: TableSchema) -> None:
        """Create the store's table and indexes when missing. A table that lacks columns is
        refused (``migrate``) before anything is created for it."""
        if schema.name in self.ready:
            return
        async with self._lock:
            if schema.name in self.ready:
                return
            await self.setup()
            async with self.executor.connection(schema) as conn:
                cur_cols = await self.columns(conn, schema)
                if not cur_cols:
                    try:
                        await self.driver.run(conn, schema.create_sql()[0])
                    except Exception as e:  # another process created it at the same time
                        if not await self.columns(conn, schema):
                            raise Unavailable(f"cannot create {schema.name}: {e}") from e
                    cur_cols = await self.columns(conn, schema)
                missing = [
                    c
                    for c in schema.expected_columns()
                    if c.lower() not in {k.lower() for k in cur_cols}
                ]
                if missing:
                    raise Unavailable(
                        f"table {schema.name} lacks column(s) {', '.join(missing)}: "
                        "run db.migrate() (or `persisty migrate URL MODULE --apply`)"
                    )
                await self._register(conn, schema)
                have = await self.index_names(conn, schema.name)
                for ix in schema.indexes:
                    if str(ix.name).lower() not in have:
                        await self._create_index(
                            conn, schema.index_sql(ix), schema.name, str(ix.name)
                        )
            self.ready.add(schema.name)

    async def _register(self, conn: Any, schema: TableSchema) -> None:
        """Record the store's table in the meta table (``table:<table>``, valued by its
        namespace), so dropping the namespace finds it in any process."""
        name = f"table:{schema.name}"
        if await self.driver.fetch(conn, self.meta.sql_get, (name,)):
            return
        try:
            await self.driver.run(conn, self.meta.sql_add, (name, schema.namespace or ""))
        except Exception as e:  # another process recorded it at the same time
            if not isinstance(self.dialect.translate(e), Conflict):
                raise

    async def tables_of(self, conn: Any, namespace: str | None) -> list[str]:
        """The store tables recorded for ``namespace`` (``None``: the stores without one)."""
        if not await self.exists(conn, META_TABLE):
            return []
        rows = await self.driver.fetch(conn, self.meta.sql_tables, ("table:%",))
        return sorted(str(n)[len("table:") :] for n, v in rows if (v or "") == (namespace or ""))

    async def counters_of(self, conn: Any, tables: Iterable[str]) -> list[str]:
        """The names of the sequence counters of ``tables`` in the meta table."""
        if not await self.exists(conn, META_TABLE):
            return []
        prefixes = tuple(f"seq:{t}:" for t in tables)
        rows = await self.driver.fetch(conn, self.meta.sql_counters, ("seq:%",))
        return [str(r[0]) for r in rows if prefixes and str(r[0]).startswith(prefixes)]

    async def _create_index(self, conn: Any, sql: str, table: str, name: str) -> None:
        try:
            await self.driver.run(conn, sql)
        except Exception as e:  # another process created it at the same time
            if name.lower() not in await self.index_names(conn, table):
                raise Unavailable(f"cannot create index {name}: {e}") from e

    async def ensure_outbox(self) -> None:
        """Create the outbox table and its index when missing."""
        if OUTBOX_TABLE in self.ready:
            return
        async with self._lock:
            if OUTBOX_TABLE in self.ready:
                return
            await self.setup()
            async with self.executor.connection() as conn:
                table_sql, index_sql = self.outbox.create_sql()
                if not await self.exists(conn, OUTBOX_TABLE):
                    try:
                        await self.driver.run(conn, table_sql)
                    except Exception as e:  # another process created it at the same time
                        if not await self.exists(conn, OUTBOX_TABLE):
                            raise Unavailable(f"cannot create {OUTBOX_TABLE}: {e}") from e
                name = str(self.outbox.index.name)
                if name.lower() not in await self.index_names(conn, OUTBOX_TABLE):
                    await self._create_index(conn, index_sql, OUTBOX_TABLE, name)
            self.ready.add(OUTBOX_TABLE)

    async def plan(self, schemas: Iterable[TableSchema]) -> list[Step]:
        """The migration steps that bring the tables of ``schemas`` up to their models."""
        await self.setup()
        steps: list[Step] = []
        async with self.executor.connection() as conn:
            for schema in schemas:
                cols = await self.columns(conn, schema)
                indexes = {
                    str(r[0])
                    for r in await self.driver.fetch(
                        conn, self.dialect.introspect_sql()[1], (schema.name,)
                    )
                }
                steps.extend(plan_table(schema, cols, indexes))
        return steps

    async def migrate(self, schemas: Iterable[TableSchema]) -> list[str]:
        """Run the additive steps of :meth:`plan`; return the whole plan."""
        schemas = list(schemas)
        steps = await self.plan(schemas)
        async with self._lock:
            async with self.executor.connection() as conn:
                for step in steps:
                    if step.sql is not None and not step.destructive:
                        try:
                            await self.driver.run(conn, step.sql, step.params)
                        except Exception:
                            # another process may have taken the same step at the same time
                            # (PostgreSQL's CREATE TABLE IF NOT EXISTS is not safe against
                            # that): done is done; a step still to do raises
                            if str(step) in {str(s) for s in await self.plan(schemas)}:
                                raise
            self.forget()
        return [str(s) for s in steps]
