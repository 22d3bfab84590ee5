"""The conformance suite on the DynamoDB backend (moto_server on 127.0.0.1, started by
scripts/services), sync and async. Each test uses its own namespace; its tables are deleted
afterwards."""

from __future__ import annotations

import os
from typing import Any

import pytest

import persisty
import persisty.aio
from persisty.backends.dynamodb import AsyncDynamoDatabase, DynamoDatabase
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


def dynamodb_url() -> str:
    """The moto_server URL; a test run without it fails (it is never skipped)."""
    endpoint = os.environ.get("AWS_ENDPOINT_URL", "")
    if not endpoint:
        pytest.fail(
            "AWS_ENDPOINT_URL is not set: run the tests with scripts/test, or "
            "`source scripts/services` first (it starts moto_server)"
        )
    return os.environ.get("PERSISTY_TEST_DYNAMODB") or (
        f"dynamodb://?region=us-east-1&endpoint_url={endpoint}"
    )


# moto reads the whole table for every Scan segment: the sync suite scans with one segment,
# the async one with two (tests/backends/dynamodb covers more)
SYNC_OPTIONS: dict[str, Any] = {"segments": 1}
ASYNC_OPTIONS: dict[str, Any] = {"segments": 2}


class TestDynamo(
    StoreConformance,
    PutExpiryIncrementConformance,
    PathConformance,
    NestedFilterConformance,
    CommitConformance,
    DatabaseLifecycleConformance,
):
    # 8 workers x 10 if_match increments (fewer than the default 25): moto
    # answers one request at a time in ~10 ms and 8-way contention costs ~16 requests per
    # increment (8 x 25 took 60-70 s per run here; 8 x 200 would take many minutes)
    concurrency_increments = 10
    increment_rounds = 10
    path_rounds = 10  # 8 writers x 10 paths each (25 took ~6 s here, a minute on CI)

    def open_database(self, namespace: str) -> Database:
        return persisty.connect(dynamodb_url(), namespace=namespace, **SYNC_OPTIONS)

    def drop(self, database: Database) -> None:
        assert isinstance(database, DynamoDatabase)
        database.drop()


class TestDynamoAsync(
    AsyncStoreConformance,
    AsyncPutExpiryIncrementConformance,
    AsyncPathConformance,
    AsyncNestedFilterConformance,
    AsyncCommitConformance,
    AsyncDatabaseLifecycleConformance,
):
    concurrency_increments = 10
    increment_rounds = 10
    path_rounds = 10

    async def open_database(self, namespace: str) -> AsyncDatabase:
        return persisty.aio.connect(dynamodb_url(), namespace=namespace, **ASYNC_OPTIONS)

    async def drop(self, database: AsyncDatabase) -> None:
        assert isinstance(database, AsyncDynamoDatabase)
        await database.drop()
