"""The kv conformance suite (persisty.testing) on every backend, sync and async, against
the real engines on 127.0.0.1 (DynamoDB on moto_server)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from tests.conftest import MYSQL_URL, POSTGRES_URL, REDIS_URL

import persisty
import persisty.aio
from persisty.store import AsyncDatabase, Database
from persisty.testing import AsyncKVConformance, KVConformance

_DIR = Path(tempfile.mkdtemp(prefix="persisty-kv-"))
SQLITE_URL = f"sqlite:///{_DIR / 'kv.db'}"
FILE_URL = f"file://{_DIR / 'files'}"


def dynamodb_url() -> str:
    endpoint = os.environ.get("AWS_ENDPOINT_URL", "")
    if not endpoint:
        pytest.fail(
            "AWS_ENDPOINT_URL is not set: run the tests with scripts/test, or "
            "`source scripts/services` first (it starts moto_server)"
        )
    return os.environ.get("PERSISTY_TEST_DYNAMODB") or (
        f"dynamodb://?region=us-east-1&endpoint_url={endpoint}"
    )


class _Sync(KVConformance):
    url = ""
    shared = True

    def target(self) -> str:
        return self.url

    def open_database(self, namespace: str) -> Database:
        return persisty.connect(self.target(), namespace=namespace)

    def process_url(self) -> str | None:
        return self.target() if self.shared else None

    def drop(self, database: Database) -> None:
        for name in ("drop_tables", "drop"):
            if hasattr(database, name):
                getattr(database, name)()
                return
        super().drop(database)


class _Async(AsyncKVConformance):
    url = ""
    shared = True

    def target(self) -> str:
        return self.url

    async def open_database(self, namespace: str) -> AsyncDatabase:
        return persisty.aio.connect(self.target(), namespace=namespace)

    def process_url(self) -> str | None:
        return self.target() if self.shared else None

    async def drop(self, database: AsyncDatabase) -> None:
        for name in ("drop_tables", "drop"):
            if hasattr(database, name):
                await getattr(database, name)()
                return
        await super().drop(database)


class TestMemory(_Sync):
    url = "memory://"
    shared = False


class TestMemoryAsync(_Async):
    url = "memory://"
    shared = False


class TestFile(_Sync):
    url = FILE_URL
    crash_points = 2_000


class TestFileAsync(_Async):
    url = FILE_URL
    crash_points = 2_000


class TestSqlite(_Sync):
    url = SQLITE_URL
    incr_native = True  # one transaction holding the row: never a retried race


class TestSqliteAsync(_Async):
    url = SQLITE_URL
    incr_native = True  # one transaction holding the row: never a retried race


class TestPostgres(_Sync):
    url = POSTGRES_URL
    incr_native = True  # one transaction holding the row: never a retried race


class TestPostgresAsync(_Async):
    url = POSTGRES_URL
    incr_native = True  # one transaction holding the row: never a retried race


class TestMariaDB(_Sync):
    url = MYSQL_URL
    incr_native = True  # one transaction holding the row: never a retried race


class TestMariaDBAsync(_Async):
    url = MYSQL_URL
    incr_native = True  # one transaction holding the row: never a retried race


class TestRedis(_Sync):
    url = REDIS_URL


class TestRedisAsync(_Async):
    url = REDIS_URL


class TestDynamo(_Sync):
    incr_native = True  # one UpdateItem (ADD) with its condition: never a retried race
    # moto answers one request at a time (~10-60 ms): fewer increments (one UpdateItem
    # each; the default 8 threads x 4 processes x 250, which SQLite, PostgreSQL, MariaDB
    # and Redis run, took minutes), fewer churn steps, a smaller crash
    incr_workers = 8
    incr_processes = 2
    incr_each = 10
    local_incr_each = 10
    churn_steps = 30
    crash_points = 100  # one TransactWriteItems: bigger extends are atomic per 100 points
    apply_count = 50

    def target(self) -> str:
        return dynamodb_url()


class TestDynamoAsync(_Async):
    incr_native = True  # one UpdateItem (ADD) with its condition: never a retried race
    incr_workers = 8
    incr_processes = 2
    incr_each = 10
    local_incr_each = 10
    churn_steps = 30
    crash_points = 100  # one TransactWriteItems: bigger extends are atomic per 100 points
    apply_count = 50

    def target(self) -> str:
        return dynamodb_url()
