"""The SQL executor (async): the pool of driver connections, transactions, and the
translation of driver errors into persisty errors, for every store of one database.

The sync twin ``_sync/executor.py`` is generated from this file by
``scripts/generate_sync.py``; edit this file, never the twin.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue  # noqa: F401, RUF100 - the sync twin's pool
import threading  # noqa: F401, RUF100 - the sync twin's pool
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from persisty.backends.sql._url import SqlUrl
from persisty.backends.sql.dialects import AsyncDriver, Dialect, driver_for, raised_in_driver
from persisty.errors import PersistyError, Unavailable

if TYPE_CHECKING:
    from persisty.backends.sql._table import TableSchema

PROGRAMMING_ERRORS = (
    NameError,
    AttributeError,
    LookupError,
    AssertionError,
    NotImplementedError,
    RecursionError,
    ImportError,
)
"""Built-in errors that only a bug raises: the executor translates them only when a driver
raised them (a driver that lost its connection may fail with an ``AttributeError``)."""


class AsyncPool:
    """At most ``size`` connections, opened when needed and reused; safe for concurrent
    tasks (threads when sync). One caller at a time reuses one connection (warm caches).

    The queue holds idle connections, and ``None`` for a slot whose connection was thrown
    away after a failure (whoever takes it opens a new one).
    """

    def __init__(self, driver: AsyncDriver, size: int, engine: str) -> None:
        self.driver = driver
        self.engine = engine
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
                raise Unavailable(f"cannot connect to {self.engine}: {e}") from e
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


class AsyncSqlExecutor:
    """Runs the statements of one database's stores on pooled driver connections, in
    transactions when asked, and turns driver errors into persisty errors (through the
    dialect). A connection that failed itself is thrown away; one whose statement failed
    goes back to the pool.

    Example::

        async with db.executor.connection() as conn:
            async with db.executor.transaction(conn):
                await db.executor.run(conn, "DELETE FROM note")
    """

    def __init__(
        self,
        dialect: Dialect,
        url: SqlUrl,
        options: Mapping[str, Any],
        pool_size: int | None = None,
    ) -> None:
        self.dialect = dialect
        self.url = url
        self.driver: AsyncDriver = driver_for(dialect.drivers, AsyncDriver, url, options)
        # an in-memory database lives in its one connection
        size = 1 if url.memory else (pool_size or 8)
        self.pool = AsyncPool(self.driver, size, dialect.name)

    @asynccontextmanager
    async def connection(self, schema: TableSchema | None = None) -> AsyncIterator[Any]:
        """A pooled driver connection; driver errors become persisty errors (``schema``
        names the fields in them)."""
        conn = await self.pool.acquire()
        try:
            yield conn
        except BaseException as e:
            err = await self._failure(conn, e, schema)
            if err is e:
                raise
            raise err from e
        self.pool.give_back(conn)

    @asynccontextmanager
    async def transaction(self, conn: Any) -> AsyncIterator[Any]:
        """A transaction on ``conn``: committed when the block ends, rolled back when it
        raises."""
        await self.begin(conn)
        try:
            yield conn
        except BaseException:
            await self.rollback(conn, quiet=True)
            raise
        await self.commit(conn)

    async def _failure(
        self, conn: Any, e: BaseException, schema: TableSchema | None
    ) -> BaseException:
        """The error to raise for ``e``; the connection goes back to the pool, or is thrown
        away when it failed itself."""
        if isinstance(e, PersistyError):
            self.pool.give_back(conn)
            return e
        if not isinstance(e, Exception):
            await self.pool.discard(conn)
            return e
        # a bug (in persisty or a caller's code run inside the block) is never the engine's
        # answer: raised as it is, not hidden behind "unavailable"
        bug = isinstance(e, PROGRAMMING_ERRORS) and not raised_in_driver(e)
        err: BaseException | None = e if bug else self.dialect.translate(e, schema)
        # a connection that failed, or that a bug may have left inside a transaction, is not
        # used again, but an in-memory SQLite database lives in its one connection: kept
        if (bug or err is None or isinstance(err, Unavailable)) and not self.url.memory:
            await self.pool.discard(conn)
        else:
            self.pool.give_back(conn)
        return err or Unavailable(f"{self.dialect.name}: {e}")

    async def query(
        self, sql: str, params: Sequence[Any], schema: TableSchema | None = None
    ) -> list[Any]:
        """Rows of one statement on a pooled connection (the hot path: no context managers)."""
        return await self._pooled(self.driver.fetch, sql, params, schema)  # type: ignore[no-any-return]

    async def execute(
        self, sql: str, params: Sequence[Any], schema: TableSchema | None = None
    ) -> int:
        """Row count of one statement on a pooled connection."""
        return await self._pooled(self.driver.run, sql, params, schema)  # type: ignore[no-any-return]

    async def _pooled(
        self, call: Any, sql: str, params: Sequence[Any], schema: TableSchema | None
    ) -> Any:
        """``call(conn, sql, params)`` on a connection taken from the pool and given back
        after it, a failure translated (and the connection discarded when it broke)."""
        pool = self.pool
        conn = await pool.acquire()
        try:
            result = await call(conn, sql, params)
        except BaseException as e:
            err = await self._failure(conn, e, schema)
            if err is e:
                raise
            raise err from e
        pool.give_back(conn)
        return result

    def _translated(self, e: Exception, schema: TableSchema | None) -> Exception:
        err = self.dialect.translate(e, schema)
        return e if err is None else err

    async def run(
        self, conn: Any, sql: str, params: Sequence[Any] = (), schema: TableSchema | None = None
    ) -> int:
        """Run one statement on ``conn``; return its row count."""
        try:
            return await self.driver.run(conn, sql, params)
        except PersistyError:
            raise
        except Exception as e:
            err = self._translated(e, schema)
            if err is e:
                raise
            raise err from e

    async def run_many(
        self, conn: Any, sql: str, rows: Iterable[Sequence[Any]], schema: TableSchema | None = None
    ) -> None:
        """Run one statement on ``conn`` once per parameter row."""
        try:
            await self.driver.run_many(conn, sql, rows)
        except PersistyError:
            raise
        except Exception as e:
            err = self._translated(e, schema)
            if err is e:
                raise
            raise err from e

    async def fetch(
        self, conn: Any, sql: str, params: Sequence[Any] = (), schema: TableSchema | None = None
    ) -> list[Any]:
        """The rows of one query on ``conn``."""
        try:
            return await self.driver.fetch(conn, sql, params)
        except PersistyError:
            raise
        except Exception as e:
            err = self._translated(e, schema)
            if err is e:
                raise
            raise err from e

    async def begin(self, conn: Any) -> None:
        """Start a transaction on ``conn`` (connections are in autocommit otherwise)."""
        await self.driver.run(conn, self.dialect.begin_sql)

    async def commit(self, conn: Any) -> None:
        await self.driver.run(conn, "COMMIT")

    async def rollback(self, conn: Any, quiet: bool = False) -> None:
        """Roll back; with ``quiet`` a failure to do so is ignored (the error being raised
        already says what went wrong)."""
        try:
            await self.driver.run(conn, "ROLLBACK")
        except Exception:
            if not quiet:
                raise

    async def close(self) -> None:
        """Close every pooled connection."""
        await self.pool.close()
