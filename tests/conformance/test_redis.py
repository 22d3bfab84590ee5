"""The conformance suite on the Redis backend (the real server on 127.0.0.1), sync and async.
Each test uses its own namespace; every key of it is deleted afterwards."""

from __future__ import annotations

from tests.conftest import REDIS_URL

import persisty
import persisty.aio
from persisty.backends.redis import AsyncRedisDatabase, RedisDatabase
from persisty.store import AsyncDatabase, Database
from persisty.testing import (
    AsyncCommitConformance,
    AsyncDatabaseLifecycleConformance,
    AsyncNestedFilterConformance,
    AsyncPathConformance,
    AsyncPutExpiryIncrementConformance,
    AsyncStoreConformance,
    CommitConformance,
    DatabaseLifecycleConformance,
    NestedFilterConformance,
    PathConformance,
    PutExpiryIncrementConformance,
    StoreConformance,
)


class TestRedis(
    StoreConformance,
    PutExpiryIncrementConformance,
    PathConformance,
    NestedFilterConformance,
    CommitConformance,
    DatabaseLifecycleConformance,
):
    concurrency_increments = 200  # 8 workers x 200 if_match increments = exactly 1,600

    def open_database(self, namespace: str) -> Database:
        return persisty.connect(REDIS_URL, namespace=namespace)

    def drop(self, database: Database) -> None:
        assert isinstance(database, RedisDatabase)
        database.drop()


class TestRedisAsync(
    AsyncStoreConformance,
    AsyncPutExpiryIncrementConformance,
    AsyncPathConformance,
    AsyncNestedFilterConformance,
    AsyncCommitConformance,
    AsyncDatabaseLifecycleConformance,
):
    concurrency_increments = 200

    async def open_database(self, namespace: str) -> AsyncDatabase:
        return persisty.aio.connect(REDIS_URL, namespace=namespace)

    async def drop(self, database: AsyncDatabase) -> None:
        assert isinstance(database, AsyncRedisDatabase)
        await database.drop()
