"""The stash conformance suite on StoreStash over every engine (memory, file, SQLite,
PostgreSQL, MariaDB, Redis, DynamoDB on moto), sync and async, and a tampered pickle blob
refused before unpickling on each; each test uses its own namespace and drops what it made."""

from __future__ import annotations

import os
import pickle  # the test forges a pickle payload that must never be unpickled
import tempfile
import uuid
from pathlib import Path
from typing import Any

import pytest
from tests.conformance.test_dynamodb import dynamodb_url
from tests.conftest import MYSQL_URL, POSTGRES_URL, REDIS_URL

import persisty
import persisty.aio
from persisty.errors import IntegrityError
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
    counted = False

    def open_stash(self) -> Stash:
        db = persisty.connect(
            self.url or dynamodb_url(), namespace="s" + uuid.uuid4().hex[:10], **self.options
        )
        return StoreStash(db, "conf", counted=self.counted)

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
    counted = False

    async def open_stash(self) -> AsyncStash:
        db = persisty.aio.connect(
            self.url or dynamodb_url(), namespace="s" + uuid.uuid4().hex[:10], **self.options
        )
        return AsyncStoreStash(db, "conf", counted=self.counted)

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


# counted=True (len one point read of a count kept in each write's commit) on every engine
# whose atomic commit takes a store with expiry (Redis refuses it: tests/stash)
class TestMemoryCounted(TestMemory):
    counted = True


class TestFileCounted(TestFile):
    counted = True


class TestSqliteCounted(TestSqlite):
    counted = True


class TestSqliteCountedAsync(TestSqliteAsync):
    counted = True


class TestPostgresCounted(TestPostgres):
    counted = True


class TestMariaDBCounted(TestMariaDB):
    counted = True


class TestDynamoCounted(TestDynamo):
    counted = True


class _Boom:
    """Unpickling this runs ``os.mkdir(path)``: proof that a blob was unpickled."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.mkdir, (self.path,))


_ENGINES = {
    "memory": "memory://",
    "file": f"file://{_DIR}",
    "sqlite": f"sqlite:///{_DIR / 'tamper.db'}",
    "postgres": POSTGRES_URL,
    "mariadb": MYSQL_URL,
    "redis": REDIS_URL,
    "dynamodb": "",
}


@pytest.mark.parametrize("engine", list(_ENGINES))
def test_a_tampered_pickle_is_refused_before_unpickling(engine: str, tmp_path: Path) -> None:
    options: dict[str, Any] = {"segments": 1} if engine == "dynamodb" else {}
    db = persisty.connect(
        _ENGINES[engine] or dynamodb_url(), namespace="t" + uuid.uuid4().hex[:10], **options
    )
    try:
        stash = StoreStash(db, "tamper", codec="pickle", secret="the stash secret")
        stash.dump("a", {"kept": (1, 2)})
        assert stash.get("a") == {"kept": (1, 2)}
        entry_type: Any = stash.entry
        signed: bytes = stash.store.read("a").value  # type: ignore[union-attr]
        marker = tmp_path / "unpickled"
        evil = pickle.dumps(_Boom(str(marker)))
        forged = StoreStash(db, "tamper", codec="pickle", secret="another secret")
        forged_blob = forged.codec.encode(_Boom(str(marker)))
        for blob in (signed[:36] + evil, evil, forged_blob, signed[:-1] + bytes([signed[-1] ^ 1])):
            stash.store.put(entry_type(key="a", value=blob))
            with pytest.raises(IntegrityError):
                stash.get("a")
            assert not marker.exists()  # refused before anything was unpickled
        pickle.loads(evil)
        assert marker.is_dir()
        stash.clear()
        _drop(db)
    finally:
        db.close()
