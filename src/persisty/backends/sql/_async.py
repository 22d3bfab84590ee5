"""The SQL backend: SQLite, PostgreSQL and MariaDB/MySQL through SQLAlchemy 2 Core.

SQLAlchemy supplies the dialects, the tables and the DDL. A store's fixed statements are
built once, filter statements per call (their text is stable per filter shape, so the
drivers' statement caches and prepared statements apply), and all of them run on the
driver's own connection from a small pool: sqlite3, psycopg and PyMySQL when sync, their
asyncio counterparts when async.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import datetime as dt
import itertools
import operator
import os
import queue  # noqa: F401, RUF100 - the sync twin's pool
import secrets
import threading
import time
import weakref
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from typing import Any, TypeVar

import msgspec
import sqlalchemy as sa

from persisty.backends.sql._commit_async import commit_stores
from persisty.backends.sql._schema import (
    DOC,
    ETAG,
    META_TABLE,
    OUTBOX_TABLE,
    Dialect,
    OutboxSchema,
    SqlUrl,
    Step,
    TableSchema,
    classify,
    introspect_sql,
    make_dialect,
    meta_add_sql,
    meta_delete_sql,
    meta_get_sql,
    meta_table_sql,
    parse_url,
    plan_table,
    sequence_sql,
)
from persisty.errors import (
    Conflict,
    IntegrityError,
    NotFound,
    PersistyError,
    PreconditionFailed,
    Unavailable,
    ValidationError,
)
from persisty.model import StoreMeta, etag
from persisty.query import ALL, NONE, Filter, Sort, validate_filter
from persisty.store import (
    AsyncDatabase,
    AsyncStoreBase,
    Edit,
    EditKind,
    EditResult,
    Insert,
    Key,
    Page,
    Remove,
    Replace,
    WriteOp,
)
from persisty.store._async import MAX_RETRIES, OrderArg
from persisty.store._prepare import (
    check_changes,
    has_increments,
    patched_attrs,
    prepare_create,
    prepare_creates,
    prepare_patch,
    prepare_update,
)


def _lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


# ---- drivers -------------------------------------------------------------------------------


class AsyncDriver:
    """How one driver connects and runs a statement (the base serves DB-API cursors)."""

    def __init__(self, url: SqlUrl, dialect: Dialect, options: Mapping[str, Any]) -> None:
        self.url = url
        self.dialect = dialect
        self.options = dict(options)

    async def connect(self) -> Any:
        raise NotImplementedError

    async def fetch(self, conn: Any, sql: str, params: Sequence[Any]) -> list[Any]:
        """All rows of a query."""
        cur = await conn.execute(sql, params)
        rows: list[Any] = await cur.fetchall()
        return rows

    async def run(self, conn: Any, sql: str, params: Sequence[Any] = ()) -> int:
        """Run a statement; return its row count."""
        cur = await conn.execute(sql, params)
        count: int = cur.rowcount
        return count

    async def run_many(self, conn: Any, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        """Run a statement once per parameter row (executemany)."""
        await conn.executemany(sql, rows)

    async def close(self, conn: Any) -> None:
        await conn.close()

    def close_now(self, conn: Any) -> None:
        """Close without waiting (a connection given back after the pool closed)."""
        result = conn.close()
        if hasattr(result, "close"):  # an un-awaited coroutine: let it go
            result.close()


_Conn = TypeVar("_Conn")


def _daemon_worker(pending: _Conn) -> _Conn:
    """The connection, with its worker thread (if the driver runs one) made a daemon.

    The async SQLite driver runs each connection in a thread of its own; a daemon thread
    lets a program that never closes its database exit (every write is committed when its
    call returns, so there is nothing to flush). Older versions are the thread themselves.
    """
    worker = getattr(pending, "_thread", pending)
    if isinstance(worker, threading.Thread) and not worker.is_alive():
        worker.daemon = True
    return pending


class AsyncSqliteDriver(AsyncDriver):
    """SQLite: WAL, a busy timeout, and Python's ``str.lower`` as ``persisty_lower``."""

    async def connect(self) -> Any:
        import aiosqlite

        path = self.url.path or ":memory:"
        timeout = float(self.options.get("timeout", 30))
        conn = await _daemon_worker(aiosqlite.connect(path, isolation_level=None,
                                                      timeout=timeout, check_same_thread=False))
        await conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
        if self.url.path is not None:
            # takes effect on a new database file only; 8192 makes bulk inserts cheaper and
            # point updates dearer than the default 4096 (docs/sql.md has the figures)
            page_size = int(self.options.get("page_size", 4096))
            await conn.execute(f"PRAGMA page_size = {page_size}")
            await conn.execute("PRAGMA journal_mode = WAL")
            await conn.execute("PRAGMA synchronous = NORMAL")
            cache_kib = int(self.options.get("cache_mb", 32)) * 1024
            await conn.execute(f"PRAGMA cache_size = -{cache_kib}")
        await conn.create_function("persisty_lower", 1, _lower, deterministic=True)
        return conn


class AsyncPostgresDriver(AsyncDriver):
    """psycopg 3 in autocommit mode (statements are prepared by psycopg after a few uses)."""

    async def connect(self) -> Any:
        import psycopg

        return await psycopg.AsyncConnection.connect(self.url.conninfo, autocommit=True)

    async def run_many(self, conn: Any, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        async with conn.cursor() as cur:
            await cur.executemany(sql, rows)


class AsyncMysqlDriver(AsyncDriver):
    """MariaDB/MySQL: utf8mb4, UTC, strict mode, rowcount = rows matched."""

    async def connect(self) -> Any:
        import asyncmy  # type: ignore[import-untyped, unused-ignore]
        from asyncmy.constants import CLIENT  # type: ignore[import-untyped, unused-ignore]

        u = self.url
        return await asyncmy.connect(
            host=u.host, port=u.port, user=u.user, password=u.password, database=u.database,
            charset="utf8mb4", autocommit=True, client_flag=CLIENT.FOUND_ROWS,
            init_command="SET time_zone = '+00:00', "
                         "sql_mode = 'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION'",
        )

    async def fetch(self, conn: Any, sql: str, params: Sequence[Any]) -> list[Any]:
        async with conn.cursor() as cur:
            await cur.execute(sql, tuple(params))
            rows: list[Any] = list(await cur.fetchall())
            return rows

    async def run(self, conn: Any, sql: str, params: Sequence[Any] = ()) -> int:
        async with conn.cursor() as cur:
            await cur.execute(sql, tuple(params))
            count: int = cur.rowcount
            return count

    async def run_many(self, conn: Any, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        async with conn.cursor() as cur:
            await cur.executemany(sql, list(rows))  # it takes sequences only

    async def close(self, conn: Any) -> None:
        conn.close()


_KIND = operator.attrgetter("kind")


# ---- a pool of driver connections ---------------------------------------------------------------


class AsyncPool:
    """At most ``size`` connections, opened when needed and reused; safe for concurrent
    tasks (threads when sync). One caller at a time reuses one connection (warm caches).

    The queue holds idle connections, and ``None`` for a slot whose connection was thrown
    away after a failure (whoever takes it opens a new one).
    """

    def __init__(self, driver: AsyncDriver, size: int) -> None:
        self.driver = driver
        self.size = size
        self._slots: asyncio.Queue[Any] = asyncio.Queue()
        self._opened = 0
        self._lock = asyncio.Lock()
        self.closed = False

    async def acquire(self) -> Any:
        """A connection (waits while all ``size`` are in use)."""
        if self.closed:
            raise Unavailable("the database is closed")
        try:
            conn = self._slots.get_nowait()
        except asyncio.QueueEmpty:
            conn = None
            async with self._lock:
                if self._opened < self.size:
                    self._opened += 1
                    opening = True
                else:
                    opening = False
            if not opening:
                conn = await self._slots.get()
        if conn is None:
            try:
                conn = await self.driver.connect()
            except Exception as e:
                self._slots.put_nowait(None)
                raise Unavailable(f"cannot connect to {self.driver.dialect.name}: {e}") from e
            except BaseException:
                self._slots.put_nowait(None)
                raise
        return conn

    def give_back(self, conn: Any) -> None:
        """Return a healthy connection to the pool."""
        if self.closed:
            with contextlib.suppress(Exception):
                self.driver.close_now(conn)
            return
        self._slots.put_nowait(conn)

    async def discard(self, conn: Any) -> None:
        """Close a connection that failed; its slot opens a new one when needed."""
        with contextlib.suppress(Exception):
            await self.driver.close(conn)
        self._slots.put_nowait(None)

    async def close(self) -> None:
        """Close the idle connections (and those in use when they are given back)."""
        self.closed = True
        while not self._slots.empty():
            conn = self._slots.get_nowait()
            if conn is not None:
                with contextlib.suppress(Exception):
                    await self.driver.close(conn)


# ---- the store --------------------------------------------------------------------------------


class AsyncSqlStore(AsyncStoreBase[Any]):
    """A Store over one SQL table: every filter runs in SQL, pages seek by key.

    Example::

        db = persisty.aio.connect("sqlite:///notes.db")
        notes = db.store(Note)
        await notes.search(F.title.icontains("x"), order=[-F.priority])
    """

    def __init__(self, db: AsyncSqlDatabase, meta: StoreMeta, schema: TableSchema) -> None:
        super().__init__(meta, db.pages)
        self.db = db
        self.schema = schema
        self.dialect = db.dialect
        self._driver = db.driver
        self._ready = False
        decoder = msgspec.json.Decoder(meta.cls)

        def decode(doc: bytes | str) -> Any:
            try:
                return decoder.decode(doc)
            except (msgspec.ValidationError, msgspec.DecodeError) as e:
                raise IntegrityError(
                    f"a stored {meta.name} does not fit the model ({e}); migrate or rewrite it"
                ) from None

        self._decode = decode
        self._outbox: AsyncSqlOutbox | None = None
        self._patched: dict[tuple[str, ...], tuple[str, ...]] = {}
        # put() is one upsert when nothing of a stored item is kept and creating sets
        # nothing an update would not (MySQL's upsert fires on any unique index: none then)
        self._blind_put = all(
            a.updatable and a.creatable and a.generated in (None, "updated")
            for a in meta.attrs if a.name not in meta.key.attrs
        ) and not meta.sequence_attrs and not (
            self.dialect.name == "mysql" and any(ix.unique for ix in meta.indexes))
        # update() needs no read when nothing of the stored item is kept
        self._str_key = len(meta.key.attrs) == 1 and meta.key_attrs[0].kind == "str"
        self._blind_update = all(
            a.updatable and a.generated not in ("created", "sequence")
            for a in meta.attrs if a.name not in meta.key.attrs
        )

    # ---- connections --------------------------------------------------------------------

    async def _prepare(self) -> None:
        if not self._ready:
            await self.db._ensure_table(self.schema)
            if self._outbox is not None:
                await self.db._ensure_outbox()
            self._ready = True

    def with_outbox(self, lease: float = 30.0) -> tuple[AsyncSqlStore, AsyncSqlOutbox]:
        """This store again, writing each change to the outbox table in the transaction of
        its write, and the outbox to deliver and clear those changes; how
        ``observed(store, outbox=True)`` makes delivery at-least-once across a crash.

        ``lease`` is how many seconds the writer has to deliver before
        :meth:`AsyncSqlOutbox.claim` lets another process take the change over.

        Example::

            store, outbox = db.store(Note).with_outbox()
            with outbox.collecting() as ids:
                await store.create(note)      # the note and its change commit together
            ...                               # deliver the change, then
            await outbox.done(ids)
        """
        outbox = AsyncSqlOutbox(self.db, self.schema.name, self.meta, lease)
        twin = AsyncSqlStore(self.db, self.meta, self.schema)
        twin.clock = self.clock
        twin.default_limit = self.default_limit
        twin._outbox = outbox
        self.db._twins.add(twin)
        return twin, outbox

    @asynccontextmanager
    async def _conn(self) -> AsyncIterator[Any]:
        if not self._ready:
            await self._prepare()
        async with self.db._connection(self.schema) as conn:
            yield conn

    async def _query(self, sql: str, params: Sequence[Any]) -> list[Any]:
        """Rows of one statement on a pooled connection (the hot path: no context managers)."""
        if not self._ready:
            await self._prepare()
        pool = self.db.pool
        conn = await pool.acquire()
        try:
            rows = await self._driver.fetch(conn, sql, params)
        except BaseException as e:
            err = await self.db._failure(conn, e, self.schema)
            if err is e:
                raise
            raise err from e
        pool.give_back(conn)
        return rows

    async def _execute(self, sql: str, params: Sequence[Any]) -> int:
        """Row count of one statement on a pooled connection."""
        if not self._ready:
            await self._prepare()
        pool = self.db.pool
        conn = await pool.acquire()
        try:
            n = await self._driver.run(conn, sql, params)
        except BaseException as e:
            err = await self.db._failure(conn, e, self.schema)
            if err is e:
                raise
            raise err from e
        pool.give_back(conn)
        return n

    # ---- hooks --------------------------------------------------------------------------

    async def _get(self, key: Key) -> tuple[Any, str] | None:
        rows = await self._query(self.schema.sql_get, self.schema.key_params(key))
        if not rows:
            return None
        doc, tag = rows[0]
        return self._decode(doc), tag

    async def _get_many(self, keys: Sequence[Key]) -> list[tuple[Any, str] | None]:
        if not keys:
            return []
        s = self.schema
        decode = self._decode
        unique = list(dict.fromkeys(keys))
        if len(s.key_cols) == 1:
            return await self._by_params([s.key_params(k)[0] for k in keys])
        found: dict[Key, tuple[Any, str]] = {}
        for start in range(0, len(unique), 500):
            chunk = unique[start:start + 500]
            params: list[Any] = []
            for k in chunk:
                params.extend(s.key_params(k))
            for doc, tag, _ in await self._query(s.sql_get_many(len(chunk)), params):
                item = decode(doc)
                found[self.meta.key_values(item)] = (item, tag)
        return [found.get(tuple(k)) for k in keys]

    async def _by_params(self, params_of: list[Any]) -> list[tuple[Any, str] | None]:
        """Rows for single-column keys given as driver parameters, matched on the key
        column each row comes back with."""
        s = self.schema
        decode = self._decode
        by_param: dict[Any, tuple[Any, str]] = {}
        wanted = list(dict.fromkeys(params_of))
        for start in range(0, len(wanted), 500):
            chunk = wanted[start:start + 500]
            for doc, tag, kv in await self._query(s.sql_get_many(len(chunk)), chunk):
                by_param[kv] = (decode(doc), tag)
        return [by_param.get(p) for p in params_of]

    async def _commit(self, ops: Sequence[WriteOp], atomic: bool) -> list[PersistyError | None]:
        if not ops:
            return []
        if self._outbox is not None:
            # every write commits with its outbox rows: one transaction per op when not atomic
            async with self._conn() as conn:
                if atomic:
                    return await self._commit_atomic(conn, ops)
                results: list[PersistyError | None] = []
                for op in ops:
                    results.extend(await self._commit_atomic(conn, [op]))
                return results
        if len(ops) == 1 and isinstance(ops[0], Remove) and ops[0].expected is None:
            s = self.schema
            if await self._execute(s.sql_delete, s.key_params(ops[0].key)) == 0:
                key_text = self.meta.key_string(ops[0].key)
                return [NotFound(f"no {self.meta.name} with key {key_text!r}")]
            return [None]
        async with self._conn() as conn:
            if len(ops) == 1:
                try:
                    await self._apply(conn, ops[0])
                except PersistyError as e:
                    return [e]
                return [None]
            if atomic:
                return await self._commit_atomic(conn, ops)
            results = []
            for op in ops:
                try:
                    await self._apply(conn, op)
                    results.append(None)
                except PersistyError as e:
                    results.append(e)
            return results

    async def _commit_atomic(self, conn: Any, ops: Sequence[WriteOp]
                             ) -> list[PersistyError | None]:
        results: list[PersistyError | None] = [None] * len(ops)
        await self.db._begin(conn)
        try:
            i = 0
            while i < len(ops):
                j = i
                while j < len(ops) and isinstance(ops[j], Insert):
                    j += 1
                if j - i > 1:
                    inserts = ops[i:j]
                    try:
                        await self.db._run_many(conn, self.schema.sql_insert, [
                            self.schema.insert_params(op.item, op.etag)  # type: ignore[union-attr]
                            for op in inserts], self.schema)
                    except PersistyError:
                        # find which insert failed, then undo everything
                        await self.db._rollback(conn)
                        return await self._find_failure(conn, ops)
                    i = j
                    continue
                try:
                    await self._apply(conn, ops[i])
                except PersistyError as e:
                    results[i] = e
                    await self.db._rollback(conn)
                    return results
                i += 1
            if self._outbox is not None:
                await self._outbox.write(conn, ops)
            await self.db._commit(conn)
            return results
        except BaseException:
            await self.db._rollback(conn, quiet=True)
            raise

    async def _find_failure(self, conn: Any, ops: Sequence[WriteOp]
                            ) -> list[PersistyError | None]:
        results: list[PersistyError | None] = [None] * len(ops)
        await self.db._begin(conn)
        try:
            for i, op in enumerate(ops):
                try:
                    await self._apply(conn, op)
                except PersistyError as e:
                    results[i] = e
                    break
        finally:
            await self.db._rollback(conn, quiet=True)
        if not any(results):
            results[0] = Unavailable("the batch failed; try again")
        return results

    async def _apply(self, conn: Any, op: WriteOp) -> None:
        s = self.schema
        db = self.db
        if isinstance(op, Insert):
            await db._run(conn, s.sql_insert, s.insert_params(op.item, op.etag), s)
            return
        if isinstance(op, Replace):
            if op.expected is None:
                n = await db._run(conn, s.sql_update, s.update_params(op.item, op.etag), s)
            else:
                n = await db._run(conn, s.sql_update_if,
                                  s.update_params(op.item, op.etag, op.expected), s)
        elif isinstance(op, Remove):
            if op.expected is None:
                n = await db._run(conn, s.sql_delete, s.key_params(op.key), s)
            else:
                n = await db._run(conn, s.sql_delete_if,
                                  (*s.key_params(op.key), op.expected), s)
        else:
            raise ValidationError(f"unknown write {op!r}")
        if n == 0:
            await self._missing(conn, op.key, op.expected)

    async def _missing(self, conn: Any, key: Key, expected: str | None) -> None:
        key_text = self.meta.key_string(key)
        if expected is not None:
            rows = await self.db._fetch(conn, self.schema.sql_etag,
                                        self.schema.key_params(key), self.schema)
            if rows:
                raise PreconditionFailed("the item has changed (etag does not match)")
        raise NotFound(f"no {self.meta.name} with key {key_text!r}")

    async def _find(self, native: Filter, spec: Sort, after: Sequence[Any] | None,
                    limit: int | None) -> list[Any]:
        sql, params = self.schema.select(native, spec, after, limit)
        rows = await self._query(sql, params)
        decode = self._decode
        return [decode(r[0]) for r in rows]

    async def _count(self, native: Filter) -> int:
        sql, params = self.schema.count(native)
        rows = await self._query(sql, params)
        return int(rows[0][0])

    def _plan(self, f: Filter) -> tuple[Filter, Filter]:
        return f, ALL

    def _describe(self, native: Filter, spec: Sort) -> str:
        sql, params = self.schema.select(native, spec, None, self.default_limit + 1)
        return f"{self.dialect.name}: {sql}; parameters {params!r}"

    async def _next_sequence(self, attr: str) -> int:
        name = f"seq:{self.schema.name}:{attr}"
        async with self._conn() as conn:
            statements = sequence_sql(self.dialect)
            rows: list[Any] = []
            for i, sql in enumerate(statements):
                if i == len(statements) - 1:
                    rows = await self.db._fetch(conn, sql, (name,) if i == 0 else ())
                else:
                    await self.db._run(conn, sql, (name,))
        return int(rows[0][0])

    # ---- faster paths with the same semantics ------------------------------------------------

    async def search(self, filter: Filter | None = None, order: OrderArg = None,
                     limit: int | None = None, page_key: str | None = None) -> Page[Any]:
        if page_key is not None and not self._ready:
            await self._prepare()  # the page-key secret is kept in the database
        return await super().search(filter, order, limit, page_key)

    async def read(self, key: str) -> Any:
        if self._str_key and type(key) is str and key and self.meta.expires is None:
            rows = await self._query(self.schema.sql_get, (key,))
            return self._decode(rows[0][0]) if rows else None
        return await super().read(key)

    async def read_batch(self, keys: Sequence[str]) -> list[Any]:
        if self._str_key and self.meta.expires is None and isinstance(
            keys, list | tuple
        ) and all(
            type(k) is str and k for k in keys
        ):
            if not keys:
                return []
            return [None if f is None else f[0] for f in await self._by_params(list(keys))]
        return await super().read_batch(keys)

    def _conditions(self, sql: str, params: list[Any], if_match: str | None,
                    precondition: Filter | None) -> str:
        """``sql`` (ending in its key condition) with the etag and precondition checks."""
        if if_match is not None:
            sql += f" AND {self.dialect.quote(ETAG)} = {self.dialect.ph}"
            params.append(if_match)
        if precondition is not None:
            f = validate_filter(precondition, self.meta)
            sql += f" AND {self.schema.where(f, params)}"
        return sql

    async def _not_written(self, key: Key) -> PersistyError:
        """Why a conditional statement changed no row: missing, or a failed condition."""
        rows = await self._query(self.schema.sql_etag, self.schema.key_params(key))
        if not rows:
            return NotFound(f"no {self.meta.name} with key {self.meta.key_string(key)!r}")
        return PreconditionFailed("the item has changed (etag does not match) or the "
                                  "precondition does not hold")

    async def update(self, item: Any, *, if_match: str | None = None,
                     precondition: Filter | None = None) -> Any:
        if not self._blind_update or self._outbox is not None or self.meta.expires is not None:
            return await super().update(item, if_match=if_match, precondition=precondition)
        # nothing of the stored item is kept: one conditional UPDATE, no read
        if not isinstance(item, self.meta.cls):
            item = self.meta.from_builtins(item)
        new = prepare_update(self.meta, item, item, self.clock())
        key = self.meta.key_values(new)
        s = self.schema
        params = list(s.update_row(new))
        sql = self._conditions(s.sql_update, params, if_match, precondition)
        if await self._execute(sql, params) == 0:
            raise await self._not_written(key)
        return new

    async def purge_expired(self, limit: int | None = None) -> int:
        if self.meta.expires is None:
            return 0
        if self._outbox is not None:  # each deletion has its outbox row
            return await super().purge_expired(limit)
        s = self.schema
        return await self._execute(s.purge_sql(limit),
                                   (s.param(self.meta.expires, self.clock()),))

    async def put(self, item: Any, *, if_match: str | None = None) -> Any:
        if if_match is not None or not self._blind_put or self._outbox is not None:
            return await super().put(item, if_match=if_match)
        # create and update give the same item: one INSERT … ON CONFLICT DO UPDATE
        new = prepare_create(self.meta, item, self.clock())
        s = self.schema
        await self._execute(s.sql_upsert, s.insert_row(new))
        return new

    async def patch(self, key: str, changes: Mapping[str, Any], *, if_match: str | None = None,
                    precondition: Filter | None = None) -> Any:
        if self._outbox is not None or self.meta.expires is not None:
            return await super().patch(key, changes, if_match=if_match,
                                       precondition=precondition)
        names = self._patched.get(tuple(changes)) if type(changes) is dict else None
        increments = names is None or has_increments(changes)
        if increments:  # names seen before need no check again; increment values do
            changes = check_changes(self.meta, changes)
            increments = has_increments(changes)
            if names is None:
                names = self._patched[tuple(changes)] = tuple(dict.fromkeys(
                    [*patched_attrs(changes),
                     *(a.name for a in self.meta.attrs if a.generated == "updated")]))
        assert names is not None
        k = (key,) if self._str_key and type(key) is str and key else self.meta.parse_key(key)
        s = self.schema
        if if_match is None and precondition is None and not increments:
            # read, then one UPDATE of the changed columns while the row is as read
            keyp = s.key_params(k)
            for _ in range(MAX_RETRIES):
                rows = await self._query(s.sql_get, keyp)
                if not rows:
                    raise NotFound(f"no {self.meta.name} with key {key!r}")
                new = prepare_patch(self.meta, self._decode(rows[0][0]), changes, self.clock())
                _, params = s.patch_params(names, new, k, rows[0][1])
                if await self._execute(s.patch_sql(names, True), params):
                    return new
                self.retries += 1
            raise Conflict("too many concurrent changes; try again")
        # increments and conditions: one transaction holding the row, so no retries
        async with self._conn() as conn:
            await self.db._begin(conn)
            try:
                rows = await self.db._fetch(conn, s.sql_get_locked, s.key_params(k), s)
                if not rows:
                    raise NotFound(f"no {self.meta.name} with key {key!r}")
                current = self._decode(rows[0][0])
                self._check((current, rows[0][1]), if_match, precondition)
                new = prepare_patch(self.meta, current, changes, self.clock())
                _, params = s.patch_params(names, new, k)
                await self.db._run(conn, s.patch_sql(names, False), params, s)
                await self.db._commit(conn)
            except BaseException:
                await self.db._rollback(conn, quiet=True)
                raise
        return new

    async def delete(self, key: str, *, if_match: str | None = None,
                     precondition: Filter | None = None) -> None:
        if self._outbox is not None or self.meta.expires is not None:
            # the outbox row needs the deleted item; an expired item is not there to delete
            return await super().delete(key, if_match=if_match, precondition=precondition)
        # one conditional DELETE
        k = self.meta.parse_key(key)
        s = self.schema
        params = list(s.key_params(k))
        sql = self._conditions(s.sql_delete, params, if_match, precondition)
        if await self._execute(sql, params) == 0:
            raise await self._not_written(k)

    async def edit_batch(self, edits: Sequence[Edit], atomic: bool = True) -> list[EditResult[Any]]:
        edits = list(edits)
        # (type and kind checked by C-level maps: this runs once per item of a bulk load)
        if not (atomic and len(edits) > 1 and not self.meta.sequence_attrs
                and set(map(type, edits)) == {Edit}
                and set(map(_KIND, edits)) == {EditKind.CREATE}):
            return await super().edit_batch(edits, atomic)
        # a batch of creates: one multi-row INSERT in one transaction; any failure (a bad
        # item, a taken key) falls back to the general path, which names the culprit
        now = self.clock()
        s = self.schema
        try:
            news = prepare_creates(self.meta, [e.item for e in edits], now)
            rows = s.insert_rows(news)
        except PersistyError:
            return await super().edit_batch(edits, atomic)
        try:
            async with self._conn() as conn:
                await self.db._begin(conn)
                try:
                    await self.db._run_many(conn, s.sql_insert, rows, s)
                    if self._outbox is not None:
                        await self._outbox.write_created(conn, news)
                except BaseException:
                    await self.db._rollback(conn, quiet=True)
                    raise
                await self.db._commit(conn)
        except (Conflict, ValidationError):
            return await super().edit_batch(edits, atomic)
        return list(map(EditResult, edits, itertools.repeat(True), itertools.repeat(None), news))

    async def delete_all(self, filter: Filter | None) -> int:
        if self._outbox is not None:  # item by item, so each change has its outbox row
            return await super().delete_all(filter)
        f = self._live(validate_filter(filter, self.meta))
        if f is NONE:
            return 0
        sql, params = self.schema.delete_where(f)
        async with self._conn() as conn:
            return await self.db._run(conn, sql, params, self.schema)

    async def update_all(self, filter: Filter | None, changes: Mapping[str, Any]) -> int:
        if self._outbox is not None:
            return await super().update_all(filter, changes)
        changes = check_changes(self.meta, changes)
        f = self._live(validate_filter(filter, self.meta))
        if f is NONE:
            return 0
        s = self.schema
        sql, params = s.select(f, (), None, None, what=self.dialect.quote(DOC), lock=True)
        now = self.clock()
        async with self._conn() as conn:
            await self.db._begin(conn)
            try:
                rows = await self.db._fetch(conn, sql, params, s)
                batch = []
                for (doc,) in rows:
                    new = prepare_patch(self.meta, self._decode(doc), changes, now)
                    batch.append(s.update_params(new, etag(new)))
                if batch:
                    await self.db._run_many(conn, s.sql_update, batch, s)
                await self.db._commit(conn)
            except BaseException:
                await self.db._rollback(conn, quiet=True)
                raise
        return len(batch)


# ---- the outbox --------------------------------------------------------------------------------


_COLLECTED: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar(
    "persisty_outbox_ids", default=None)


class AsyncSqlOutbox:
    """The changes of one store's writes, kept in the ``persisty_outbox`` table until
    delivered: each row is written in the transaction of its write, leased to the writer
    for ``lease`` seconds, and deleted by :meth:`done`. A row whose lease ran out (its
    writer crashed before delivering) is taken over by :meth:`claim`, so every committed
    change is delivered at least once.

    Example::

        store, outbox = db.store(Note).with_outbox(lease=30)
        for change_id, kind, key, old, new, at in await outbox.claim(100):
            ...                               # deliver, then
        await outbox.done([row[0] for row in rows])
    """

    def __init__(self, db: AsyncSqlDatabase, store: str, meta: StoreMeta, lease: float) -> None:
        self.db = db
        self.store = store
        self.meta = meta
        self.lease = float(lease)
        self.schema = db.outbox_schema

    @contextmanager
    def collecting(self) -> Iterator[list[str]]:
        """Collect the ids of the rows written in this block (this task or thread only)."""
        ids: list[str] = []
        token = _COLLECTED.set(ids)
        try:
            yield ids
        finally:
            _COLLECTED.reset(token)

    def _row(self, kind: str, key: Key, old: Any, new: Any, now: float) -> tuple[Any, ...]:
        # ids grow with time (nanoseconds, then 64 random bits), so rows are appended to the
        # table's B-tree and deleted from its end instead of landing all over it
        change_id = f"{time.time_ns():016x}{secrets.randbits(64):016x}"
        collected = _COLLECTED.get()
        if collected is not None:
            collected.append(change_id)
        m = self.meta
        doc = self.schema.doc
        return (change_id, self.store, kind, m.key_string(key),
                doc(None if old is None else m.encode(old)),
                doc(None if new is None else m.encode(new)), now, now + self.lease)

    async def write(self, conn: Any, ops: Sequence[WriteOp]) -> None:
        """Insert the rows of ``ops`` on ``conn``, inside the caller's transaction."""
        now = time.time()
        rows = []
        for op in ops:
            if isinstance(op, Insert):
                rows.append(self._row("create", op.key, None, op.item, now))
            elif isinstance(op, Replace):
                rows.append(self._row("update", op.key, op.old, op.item, now))
            else:
                rows.append(self._row("delete", op.key, op.old, None, now))
        await self.db._run_many(conn, self.schema.sql_insert, rows)

    async def write_created(self, conn: Any, items: Sequence[Any]) -> None:
        """Insert the rows of newly created ``items``, inside the caller's transaction."""
        now = time.time()
        key_values = self.meta.key_values
        await self.db._run_many(conn, self.schema.sql_insert, [
            self._row("create", key_values(i), None, i, now) for i in items])

    async def done(self, ids: Sequence[str]) -> None:
        """Delete delivered rows (ids that are gone already are fine)."""
        if ids:
            async with self.db._connection() as conn:
                # one transaction: in autocommit each delete would commit on its own
                await self.db._begin(conn)
                try:
                    await self.db._run_many(conn, self.schema.sql_delete, [(i,) for i in ids])
                except BaseException:
                    await self.db._rollback(conn, quiet=True)
                    raise
                await self.db._commit(conn)

    async def claim(self, limit: int = 100) -> list[tuple[str, str, str, Any, Any, dt.datetime]]:
        """Take over up to ``limit`` rows whose lease ran out, oldest first, and lease them
        to this process: ``(id, kind, key, old, new, at)`` with the items decoded."""
        await self.db._ensure_outbox()
        s = self.schema
        now = time.time()
        claimed = []
        async with self.db._connection() as conn:
            due = await self.db._fetch(conn, s.sql_due, (self.store, now, limit))
            for change_id, until in due:
                # a conditional update: of two processes claiming one row, one wins
                if await self.db._run(conn, s.sql_claim, (now + self.lease, change_id, until)):
                    rows = await self.db._fetch(conn, s.sql_get, (change_id,))
                    if rows:
                        kind, key, old, new, at = rows[0]
                        claimed.append((change_id, kind, key, self._item(old), self._item(new),
                                        dt.datetime.fromtimestamp(at, dt.UTC)))
        return claimed

    def _item(self, doc: Any) -> Any:
        return None if doc is None else self.meta.decode(doc)

    async def pending(self) -> int:
        """How many changes of this store wait in the outbox (leased or not)."""
        await self.db._ensure_outbox()
        async with self.db._connection() as conn:
            rows = await self.db._fetch(conn, self.schema.sql_count, (self.store,))
        return int(rows[0][0])


# ---- the database ------------------------------------------------------------------------------


_DRIVERS: dict[str, type[AsyncDriver]] = {
    "sqlite": AsyncSqliteDriver,
    "postgresql": AsyncPostgresDriver,
    "mysql": AsyncMysqlDriver,
}


class AsyncSqlDatabase(AsyncDatabase):
    """``sqlite:///file.db`` (``sqlite://`` in memory), ``postgresql://user@host/db``,
    ``mysql://user@host/db`` (or ``mariadb://``): one table per store, named
    ``<namespace>_<store>``, created on first use.

    Options: ``pool_size`` (connections kept; 1 for SQLite in memory); for SQLite files
    ``timeout`` (the busy timeout in seconds, default 30), ``cache_mb`` (the page cache of
    each connection, default 32) and ``page_size`` (bytes per page of a new file, default
    4096).

    Example::

        db = persisty.aio.connect("postgresql://postgres@127.0.0.1/app", namespace="t1")
        notes = db.store(Note)
        print(await db.plan_migration())   # what migrate() would do
        await db.migrate()
    """

    def __init__(self, url: str = "sqlite:///persisty.db", *, namespace: str | None = None,
                 secret: bytes | str | None = None, pool_size: int | None = None,
                 **options: Any) -> None:
        self._own_secret = not (secret or os.environ.get("PERSISTY_SECRET"))
        super().__init__(url, namespace=namespace, secret=secret)
        unknown = set(options) - {"timeout", "cache_mb", "page_size"}
        if unknown:
            raise ValidationError(f"unknown option {sorted(unknown)[0]!r}",
                                  field=sorted(unknown)[0])
        page_size = options.get("page_size", 4096)
        if type(page_size) is not int or page_size not in [2 ** n for n in range(9, 17)]:
            raise ValidationError(f"page_size must be a power of two from 512 to 65536, not "
                                  f"{page_size!r}", field="page_size")
        self.sql_url = parse_url(url)
        self.dialect = make_dialect(self.sql_url.engine)
        self.driver = _DRIVERS[self.sql_url.engine](self.sql_url, self.dialect, options)
        size = pool_size or (1 if self.sql_url.memory else 8)
        if self.sql_url.memory:
            size = 1
        self.pool = AsyncPool(self.driver, size)
        self.metadata = sa.MetaData()
        self.schemas: dict[str, TableSchema] = {}
        self._auto_pages = self.pages
        self._setup_done = False
        self._tables_ready: set[str] = set()
        self._lock = asyncio.Lock()
        self.outbox_schema = OutboxSchema(self.dialect)
        # stores writing to the outbox, forgotten with the layers that made them
        self._twins: weakref.WeakSet[AsyncSqlStore] = weakref.WeakSet()

    def _open(self, meta: StoreMeta) -> AsyncSqlStore:
        schema = TableSchema(meta, self.dialect, self.namespace, self.metadata)
        self.schemas[schema.name] = schema
        return AsyncSqlStore(self, meta, schema)

    async def _commit_stores(self, groups: list[tuple[AsyncStoreBase[Any], list[WriteOp]]]
                             ) -> list[list[PersistyError | None]]:
        return await commit_stores(self, groups)

    # ---- connections ------------------------------------------------------------------------

    @asynccontextmanager
    async def _connection(self, schema: TableSchema | None = None) -> AsyncIterator[Any]:
        """A pooled driver connection; driver errors become persisty errors."""
        conn = await self.pool.acquire()
        try:
            yield conn
        except BaseException as e:
            err = await self._failure(conn, e, schema)
            if err is e:
                raise
            raise err from e
        self.pool.give_back(conn)

    async def _failure(self, conn: Any, e: BaseException, schema: TableSchema | None
                       ) -> BaseException:
        """The error to raise for ``e``; the connection goes back to the pool, or is thrown
        away when it failed itself."""
        if isinstance(e, PersistyError):
            self.pool.give_back(conn)
            return e
        if not isinstance(e, Exception):
            await self.pool.discard(conn)
            return e
        err = classify(self.dialect, e, schema)
        if (err is None or isinstance(err, Unavailable)) and not self.sql_url.memory:
            await self.pool.discard(conn)
            return err or Unavailable(f"{self.dialect.name}: {e}")
        # an in-memory SQLite database lives in its one connection: never throw it away
        self.pool.give_back(conn)
        return err or Unavailable(f"{self.dialect.name}: {e}")

    async def _run(self, conn: Any, sql: str, params: Sequence[Any],
                   schema: TableSchema | None = None) -> int:
        try:
            return await self.driver.run(conn, sql, params)
        except PersistyError:
            raise
        except Exception as e:
            err = classify(self.dialect, e, schema)
            if err is None:
                raise
            raise err from e

    async def _run_many(self, conn: Any, sql: str, rows: Iterable[Sequence[Any]],
                        schema: TableSchema | None = None) -> None:
        try:
            await self.driver.run_many(conn, sql, rows)
        except PersistyError:
            raise
        except Exception as e:
            err = classify(self.dialect, e, schema)
            if err is None:
                raise
            raise err from e

    async def _fetch(self, conn: Any, sql: str, params: Sequence[Any],
                     schema: TableSchema | None = None) -> list[Any]:
        try:
            return await self.driver.fetch(conn, sql, params)
        except PersistyError:
            raise
        except Exception as e:
            err = classify(self.dialect, e, schema)
            if err is None:
                raise
            raise err from e

    async def _begin(self, conn: Any) -> None:
        await self.driver.run(conn, self.dialect.begin_sql)

    async def _commit(self, conn: Any) -> None:
        await self.driver.run(conn, "COMMIT")

    async def _rollback(self, conn: Any, quiet: bool = False) -> None:
        try:
            await self.driver.run(conn, "ROLLBACK")
        except Exception:
            if not quiet:
                raise

    # ---- schema -------------------------------------------------------------------------------

    async def _setup(self) -> None:
        """The meta table and the page-key secret every process of this database shares.

        What exists is looked up first and only what is missing is created: MariaDB answers
        ``IF NOT EXISTS`` and ``INSERT IGNORE`` on existing things with notes, which the
        async driver prints and fetches with an extra ``SHOW WARNINGS`` round trip."""
        if self._setup_done:
            return
        async with self._connection() as conn:
            if not await self._exists(conn, META_TABLE):
                await self.driver.run(conn, meta_table_sql(self.dialect))
            if self.dialect.name == "postgresql":
                icu = await self.driver.fetch(
                    conn, "SELECT 1 FROM pg_collation WHERE collname = 'und-x-icu'", ())
                if not icu:  # a server built without ICU: the database's own lower()
                    self.dialect.lower_fn = 'lower({} COLLATE "default") COLLATE "C"'
            if self._own_secret:
                rows = await self.driver.fetch(conn, meta_get_sql(self.dialect), ("secret",))
                if not rows:
                    try:
                        await self.driver.run(conn, meta_add_sql(self.dialect),
                                              ("secret", os.urandom(32).hex()))
                    except Exception as e:  # another process stored its secret first
                        if not isinstance(classify(self.dialect, e), Conflict):
                            raise
                    rows = await self.driver.fetch(conn, meta_get_sql(self.dialect),
                                                   ("secret",))
                self._auto_pages._secret = bytes.fromhex(rows[0][0])
        self._setup_done = True

    async def _exists(self, conn: Any, table: str) -> bool:
        return bool(await self.driver.fetch(conn, introspect_sql(self.dialect)[0], (table,)))

    async def _index_names(self, conn: Any, table: str) -> set[str]:
        rows = await self.driver.fetch(conn, introspect_sql(self.dialect)[1], (table,))
        return {str(r[0]).lower() for r in rows}

    async def _ensure_table(self, schema: TableSchema) -> None:
        """Create the store's table and indexes when missing. A table that lacks columns is
        refused (``migrate``) before anything is created for it."""
        if schema.name in self._tables_ready:
            return
        async with self._lock:
            if schema.name in self._tables_ready:
                return
            await self._setup()
            async with self._connection(schema) as conn:
                cur_cols = await self._columns(conn, schema)
                if not cur_cols:
                    try:
                        await self.driver.run(conn, schema.create_sql()[0])
                    except Exception as e:  # another process created it at the same time
                        if not await self._table_exists(conn, schema):
                            raise Unavailable(f"cannot create {schema.name}: {e}") from e
                    cur_cols = await self._columns(conn, schema)
                missing = [c for c in schema.expected_columns()
                           if c.lower() not in {k.lower() for k in cur_cols}]
                if missing:
                    raise Unavailable(
                        f"table {schema.name} lacks column(s) {', '.join(missing)}: "
                        "run db.migrate() (or `persisty migrate URL MODULE --apply`)")
                have = await self._index_names(conn, schema.name)
                for ix in schema.indexes:
                    if str(ix.name).lower() not in have:
                        await self._create_index(conn, schema.index_sql(ix), schema.name,
                                                 str(ix.name))
            self._tables_ready.add(schema.name)

    async def _create_index(self, conn: Any, sql: str, table: str, name: str) -> None:
        try:
            await self.driver.run(conn, sql)
        except Exception as e:  # another process created it at the same time
            if name.lower() not in await self._index_names(conn, table):
                raise Unavailable(f"cannot create index {name}: {e}") from e

    async def _ensure_outbox(self) -> None:
        if OUTBOX_TABLE in self._tables_ready:
            return
        async with self._lock:
            if OUTBOX_TABLE in self._tables_ready:
                return
            await self._setup()
            async with self._connection() as conn:
                table_sql, index_sql = self.outbox_schema.create_sql()
                if not await self._exists(conn, OUTBOX_TABLE):
                    try:
                        await self.driver.run(conn, table_sql)
                    except Exception as e:  # another process created it at the same time
                        if not await self._exists(conn, OUTBOX_TABLE):
                            raise Unavailable(f"cannot create {OUTBOX_TABLE}: {e}") from e
                name = str(self.outbox_schema.index.name)
                if name.lower() not in await self._index_names(conn, OUTBOX_TABLE):
                    await self._create_index(conn, index_sql, OUTBOX_TABLE, name)
            self._tables_ready.add(OUTBOX_TABLE)

    async def _columns(self, conn: Any, schema: TableSchema) -> dict[str, str]:
        cols_sql, _ = introspect_sql(self.dialect)
        rows = await self.driver.fetch(conn, cols_sql, (schema.name,))
        return {str(r[0]): str(r[1]) for r in rows}

    async def _table_exists(self, conn: Any, schema: TableSchema) -> bool:
        return bool(await self._columns(conn, schema))

    async def _plan(self) -> list[Step]:
        await self._setup()
        steps: list[Step] = []
        _, ix_sql = introspect_sql(self.dialect)
        async with self._connection() as conn:
            for schema in self.schemas.values():
                cols = await self._columns(conn, schema)
                indexes = {str(r[0]) for r in await self.driver.fetch(conn, ix_sql,
                                                                      (schema.name,))}
                steps.extend(plan_table(schema, cols, indexes))
        return steps

    async def plan_migration(self) -> list[str]:
        """What :meth:`migrate` would do for the stores opened so far: SQL statements, and
        ``-- not applied: …`` lines for destructive differences (never applied)."""
        return [str(s) for s in await self._plan()]

    async def migrate(self) -> list[str]:
        """Create missing tables, columns and indexes for the stores opened so far; return
        the plan (destructive differences are reported as ``-- not applied: …``)."""
        steps = await self._plan()
        async with self._lock:
            async with self._connection() as conn:
                for step in steps:
                    if step.sql is not None and not step.destructive:
                        await self.driver.run(conn, step.sql, step.params)
            self._tables_ready.clear()
        self._forget_tables()
        return [str(s) for s in steps]

    def _forget_tables(self) -> None:
        for store in [*self._stores.values(), *self._twins]:
            if isinstance(store, AsyncSqlStore):
                store._ready = False

    async def drop(self, cls: type[Any] | None = None) -> None:
        """Drop the table of the store of ``cls`` with its sequence counters and its
        changes waiting in the outbox; without ``cls``, those of every store opened so far.

        Example::

            await db.drop(Note)
        """
        if cls is not None:
            store = self.store(cls)
            assert isinstance(store, AsyncSqlStore)
            schemas = [store.schema]
        else:
            schemas = list(self.schemas.values())
        counters = [(f"seq:{schema.name}:{attr}",) for schema in schemas
                    for attr in schema.meta.sequence_attrs]
        async with self._connection() as conn:
            for schema in schemas:
                if await self._table_exists(conn, schema):  # no DROP IF EXISTS notes
                    await self.driver.run(conn, schema.drop_sql())
            if counters and await self._exists(conn, META_TABLE):
                await self.driver.run_many(conn, meta_delete_sql(self.dialect), counters)
            if OUTBOX_TABLE in self._tables_ready or await self._exists(conn, OUTBOX_TABLE):
                await self.driver.run_many(conn, self.outbox_schema.sql_delete_store,
                                           [(schema.name,) for schema in schemas])
        for schema in schemas:
            self._tables_ready.discard(schema.name)
        self._forget_tables()

    async def footprint(self, cls: type[Any] | None = None) -> list[str]:
        """The table of the store of ``cls`` (without ``cls``, of every store opened so
        far) if it exists, its sequence counters in ``persisty_meta`` and its changes in the
        outbox."""
        if cls is not None:
            store = self.store(cls)
            assert isinstance(store, AsyncSqlStore)
            schemas = [store.schema]
        else:
            schemas = list(self.schemas.values())
        found: list[str] = []
        async with self._connection() as conn:
            outbox = await self._exists(conn, OUTBOX_TABLE)
            counters = await self._exists(conn, META_TABLE)
            for schema in schemas:
                if await self._table_exists(conn, schema):
                    found.append(f"table {schema.name}")
                for attr in schema.meta.sequence_attrs if counters else ():
                    name = f"seq:{schema.name}:{attr}"
                    if await self.driver.fetch(conn, meta_get_sql(self.dialect), (name,)):
                        found.append(f"{META_TABLE} row {name}")
                if outbox:
                    rows = await self.driver.fetch(conn, self.outbox_schema.sql_count,
                                                   (schema.name,))
                    if rows and int(rows[0][0]):
                        found.append(f"{OUTBOX_TABLE}: {int(rows[0][0])} change(s) of "
                                     f"{schema.name}")
        return found

    async def drop_tables(self) -> None:
        """:meth:`drop` of every store opened so far (kept for existing callers)."""
        await self.drop()

    async def close(self) -> None:
        """Close every pooled connection."""
        await self.pool.close()
