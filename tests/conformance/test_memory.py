"""The conformance suite on the in-memory backend, sync and async."""

from __future__ import annotations

import persisty
import persisty.aio
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


class TestMemory(
    StoreConformance,
    PutExpiryIncrementConformance,
    PathConformance,
    NestedFilterConformance,
    CommitConformance,
    DatabaseLifecycleConformance,
):
    def open_database(self, namespace: str) -> Database:
        return persisty.connect("memory://", namespace=namespace)


class TestMemoryAsync(
    AsyncStoreConformance,
    AsyncPutExpiryIncrementConformance,
    AsyncPathConformance,
    AsyncNestedFilterConformance,
    AsyncCommitConformance,
    AsyncDatabaseLifecycleConformance,
):
    async def open_database(self, namespace: str) -> AsyncDatabase:
        return persisty.aio.connect("memory://", namespace=namespace)
