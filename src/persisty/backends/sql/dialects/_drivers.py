"""The driver base classes, sync and async (a hand-written pair): how a dialect's driver
connects and runs a statement. The defaults serve DB-API cursors (``conn.execute``)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from persisty.backends.sql._url import SqlUrl


class Driver:
    """How one sync driver connects and runs a statement."""

    def __init__(self, url: SqlUrl, options: Mapping[str, Any]) -> None:
        self.url = url
        self.options = dict(options)

    def connect(self) -> Any:
        raise NotImplementedError

    def fetch(self, conn: Any, sql: str, params: Sequence[Any]) -> list[Any]:
        """All rows of a query."""
        rows: list[Any] = conn.execute(sql, params).fetchall()
        return rows

    def run(self, conn: Any, sql: str, params: Sequence[Any] = ()) -> int:
        """Run a statement; return its row count."""
        count: int = conn.execute(sql, params).rowcount
        return count

    def run_many(self, conn: Any, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        """Run a statement once per parameter row (executemany)."""
        conn.executemany(sql, rows)

    def close(self, conn: Any) -> None:
        conn.close()

    def close_now(self, conn: Any) -> None:
        """Close without waiting (a connection given back after the pool closed)."""
        conn.close()


class AsyncDriver:
    """How one asyncio driver connects and runs a statement."""

    def __init__(self, url: SqlUrl, options: Mapping[str, Any]) -> None:
        self.url = url
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


def driver_for(
    drivers: Sequence[type[Any]], base: type[Any], url: SqlUrl, options: Mapping[str, Any]
) -> Any:
    """The driver among a dialect's ``drivers`` that is a ``base`` (``Driver`` or
    ``AsyncDriver``), made for ``url``."""
    for cls in drivers:
        if issubclass(cls, base):
            return cls(url, options)
    raise TypeError(f"the {url.engine} dialect has no {base.__name__}")
