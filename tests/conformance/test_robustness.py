"""The robustness suite (drop, hostile values, inheritance, torn batches) on every backend,
sync and async, against the real engines on 127.0.0.1."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from tests.conformance.test_dynamodb import ASYNC_OPTIONS, SYNC_OPTIONS, dynamodb_url
from tests.conftest import MYSQL_URL, POSTGRES_URL, REDIS_URL

import persisty
import persisty.aio
from persisty.store import AsyncDatabase, Database
from persisty.testing import AsyncRobustnessConformance, RobustnessConformance

_DIR = Path(tempfile.mkdtemp(prefix="persisty-robust-"))


class _Sync(RobustnessConformance):
    url = ""

    def open_database(self, namespace: str) -> Database:
        return persisty.connect(self.url, namespace=namespace)


class _Async(AsyncRobustnessConformance):
    url = ""

    async def open_database(self, namespace: str) -> AsyncDatabase:
        return persisty.aio.connect(self.url, namespace=namespace)


class TestMemory(_Sync):
    url = "memory://"


class TestMemoryAsync(_Async):
    url = "memory://"


class TestDirectory(_Sync):
    url = f"file://{_DIR / 'files'}"


class TestDirectoryAsync(_Async):
    url = f"file://{_DIR / 'files'}"


class TestSqliteMemory(_Sync):
    url = "sqlite://"


class TestSqliteMemoryAsync(_Async):
    url = "sqlite://"


class TestSqliteFile(_Sync):
    url = f"sqlite:///{_DIR / 'robust.db'}"


class TestSqliteFileAsync(_Async):
    url = f"sqlite:///{_DIR / 'robust.db'}"


class TestPostgres(_Sync):
    url = POSTGRES_URL


class TestPostgresAsync(_Async):
    url = POSTGRES_URL


class TestMariaDB(_Sync):
    url = MYSQL_URL


class TestMariaDBAsync(_Async):
    url = MYSQL_URL


class TestRedis(_Sync):
    url = REDIS_URL


class TestRedisAsync(_Async):
    url = REDIS_URL


class TestDynamo(RobustnessConformance):
    def open_database(self, namespace: str) -> Database:
        return persisty.connect(dynamodb_url(), namespace=namespace, **SYNC_OPTIONS)


class TestDynamoAsync(AsyncRobustnessConformance):
    async def open_database(self, namespace: str) -> AsyncDatabase:
        return persisty.aio.connect(dynamodb_url(), namespace=namespace, **ASYNC_OPTIONS)


pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")
