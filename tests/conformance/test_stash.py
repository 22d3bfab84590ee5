"""The stash conformance suite on StoreStash over every engine (memory, file, SQLite,
PostgreSQL, MariaDB, Redis, DynamoDB on moto), sync and async; each test uses its own
namespace and drops what it made."""

from __future__ import annotations

import tempfile
import uuid
from pathlib import Path
from typing import Any

from tests.conformance.test_dynamodb import dynamodb_url
from tests.conftest import MYSQL_URL, POSTGRES_URL, REDIS_URL

import persisty
import persisty.aio
from persisty.stash import AsyncStash, AsyncStoreStash, Stash, StoreStash
from persisty.testing import AsyncStashConformance, StashConformance

_DIR = Path(tempfile.mkdtemp(prefix="persisty-stash-engines-"))


def _drop(database: Any) -> Any:
    for name in ("drop_tables", "drop"):
        method = getattr(database, name, None)
        if method is not None:
            return method()
    return None


class _Sync(StashConformance):
    url = ""
    options: dict[str, Any] = {}

    def open_stash(self) -> Stash:
        db = persisty.connect(
            self.url or dynamodb_url(), namespace="s" + uuid.uuid4().hex[:10], **self.options
        )
        return StoreStash(db, "conf")

    def close_stash(self, stash: Stash) -> None:
        assert isinstance(stash, StoreStash)
        try:
            stash.clear()
            _drop(stash.database)
        finally:
            stash.database.close()


class _Async(AsyncStashConformance):
    url = ""
    options: dict[str, Any] = {}

    async def open_stash(self) -> AsyncStash:
        db = persisty.aio.connect(
            self.url or dynamodb_url(), namespace="s" + uuid.uuid4().hex[:10], **self.options
        )
        return AsyncStoreStash(db, "conf")

    async def close_stash(self, stash: AsyncStash) -> None:
        assert isinstance(stash, AsyncStoreStash)
        try:
            await stash.clear()
            dropped = _drop(stash.database)
            if dropped is not None:
                await dropped
        finally:
            await stash.database.close()


class TestMemory(_Sync):
    url = "memory://"


class TestMemoryAsync(_Async):
    url = "memory://"


class TestFile(_Sync):
    url = f"file://{_DIR}"


class TestFileAsync(_Async):
    url = f"file://{_DIR}"


class TestSqlite(_Sync):
    url = f"sqlite:///{_DIR / 'stash.db'}"


class TestSqliteAsync(_Async):
    url = f"sqlite:///{_DIR / 'stash-async.db'}"


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


# moto answers one request at a time: fewer keys (still two atomic batches of 100)
class TestDynamo(_Sync):
    options = {"segments": 1}
    many_keys = 250


class TestDynamoAsync(_Async):
    options = {"segments": 2}
    many_keys = 250
