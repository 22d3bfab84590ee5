"""The conformance suite through the cache layer (in-process LRU and Redis) and the
access-control layer (allow-all policy), alone and stacked, sync and async, on the memory
backend and on SQLite (in memory)."""

from __future__ import annotations

import uuid
from typing import Any

from tests.conftest import REDIS_URL

import persisty
import persisty.aio
from persisty.layers import Policy, Principal, cached, secured
from persisty.store import AsyncDatabase, AsyncStore, Database, Store
from persisty.testing import (
    AsyncPathConformance,
    AsyncPutExpiryIncrementConformance,
    AsyncStoreConformance,
    PathConformance,
    PutExpiryIncrementConformance,
    StoreConformance,
)

ANYONE = Principal("tester", scopes={"user"})


class _Layers:
    """How the layers under test are put on a backend's store; one cache per inner store,
    so every wrap of the same store shares it (as one process's stores would)."""

    url = "memory://"
    layers: tuple[str, ...] = ("cache",)

    def _wrap(self, store: Any) -> Any:
        done: dict[int, Any] = self.__dict__.setdefault("_done", {})
        found = done.get(id(store))
        if found is not None:
            return found[1]
        wrapped = store
        for layer in self.layers:
            if layer == "cache":
                wrapped = cached(wrapped, max_items=1000)
            elif layer == "redis":
                wrapped = cached(
                    wrapped, cache=REDIS_URL, prefix=f"persisty:test:{uuid.uuid4().hex}:"
                )
            elif layer == "secured":
                wrapped = secured(wrapped, Policy.allow_all(), ANYONE)
        done[id(store)] = (store, wrapped)  # keep store alive so its id stays unique
        return wrapped

    def _cached_stores(self) -> list[Any]:
        result = []
        for _, wrapped in self.__dict__.get("_done", {}).values():
            s = wrapped
            while s is not None:
                if hasattr(s, "cache"):
                    result.append(s)
                s = getattr(s, "inner", None)
        return result


class _Sync(_Layers, StoreConformance, PutExpiryIncrementConformance, PathConformance):
    def open_database(self, namespace: str) -> Database:
        return persisty.connect(self.url, namespace=namespace)

    def wrap(self, store: Store[Any]) -> Store[Any]:
        return self._wrap(store)  # type: ignore[no-any-return]

    def drop(self, database: Database) -> None:
        super().drop(database)
        for s in self._cached_stores():
            s.close()
        self.__dict__.pop("_done", None)


class _Async(
    _Layers, AsyncStoreConformance, AsyncPutExpiryIncrementConformance, AsyncPathConformance
):
    async def open_database(self, namespace: str) -> AsyncDatabase:
        return persisty.aio.connect(self.url, namespace=namespace)

    async def wrap(self, store: AsyncStore[Any]) -> AsyncStore[Any]:
        return self._wrap(store)  # type: ignore[no-any-return]

    async def drop(self, database: AsyncDatabase) -> None:
        await super().drop(database)
        for s in self._cached_stores():
            await s.close()
        self.__dict__.pop("_done", None)


class TestCachedMemory(_Sync):
    layers = ("cache",)


class TestCachedMemoryAsync(_Async):
    layers = ("cache",)


class TestRedisCachedMemory(_Sync):
    layers = ("redis",)


class TestRedisCachedMemoryAsync(_Async):
    layers = ("redis",)


class TestSecuredMemory(_Sync):
    layers = ("secured",)


class TestSecuredMemoryAsync(_Async):
    layers = ("secured",)


class TestCachedOverSecuredMemory(_Sync):
    layers = ("secured", "cache")


class TestSecuredOverCachedMemoryAsync(_Async):
    layers = ("cache", "secured")


class _SqlSync(_Sync):
    url = "sqlite://"

    def drop(self, database: Database) -> None:
        from persisty.backends.sql import SqlDatabase

        assert isinstance(database, SqlDatabase)
        database.drop_tables()
        for s in self._cached_stores():
            s.close()
        self.__dict__.pop("_done", None)


class _SqlAsync(_Async):
    url = "sqlite://"

    async def drop(self, database: AsyncDatabase) -> None:
        from persisty.backends.sql import AsyncSqlDatabase

        assert isinstance(database, AsyncSqlDatabase)
        await database.drop_tables()
        for s in self._cached_stores():
            await s.close()
        self.__dict__.pop("_done", None)


class TestCachedSqlite(_SqlSync):
    layers = ("cache",)


class TestCachedSqliteAsync(_SqlAsync):
    layers = ("cache",)


class TestRedisCachedSqliteAsync(_SqlAsync):
    layers = ("redis",)


class TestSecuredSqlite(_SqlSync):
    layers = ("secured",)


class TestSecuredSqliteAsync(_SqlAsync):
    layers = ("secured",)


class TestSecuredOverCachedSqlite(_SqlSync):
    layers = ("cache", "secured")
