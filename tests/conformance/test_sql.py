"""The conformance suite on the SQL backend: SQLite (file and memory), PostgreSQL and
MariaDB, sync and async, against the real engines on 127.0.0.1.

The concurrency test runs 8 workers x 200 ``if_match`` increments (exactly 1,600)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from tests.conftest import MYSQL_URL, POSTGRES_URL

import persisty
import persisty.aio
from persisty.backends.sql import AsyncSqlDatabase, SqlDatabase
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

_DIR = Path(tempfile.mkdtemp(prefix="persisty-sql-"))
SQLITE_FILE_URL = f"sqlite:///{_DIR / 'conformance.db'}"


class _Sync(
    StoreConformance,
    PutExpiryIncrementConformance,
    PathConformance,
    NestedFilterConformance,
    CommitConformance,
    DatabaseLifecycleConformance,
):
    url = ""
    concurrency_increments = 200
    nested_native = True

    def open_database(self, namespace: str) -> Database:
        return persisty.connect(self.url, namespace=namespace)

    def drop(self, database: Database) -> None:
        assert isinstance(database, SqlDatabase)
        database.drop_tables()


class _Async(
    AsyncStoreConformance,
    AsyncPutExpiryIncrementConformance,
    AsyncPathConformance,
    AsyncNestedFilterConformance,
    AsyncCommitConformance,
    AsyncDatabaseLifecycleConformance,
):
    url = ""
    concurrency_increments = 200
    nested_native = True

    async def open_database(self, namespace: str) -> AsyncDatabase:
        return persisty.aio.connect(self.url, namespace=namespace)

    async def drop(self, database: AsyncDatabase) -> None:
        assert isinstance(database, AsyncSqlDatabase)
        await database.drop_tables()


class TestSqliteMemory(_Sync):
    url = "sqlite://"


class TestSqliteMemoryAsync(_Async):
    url = "sqlite://"


class TestSqliteFile(_Sync):
    url = SQLITE_FILE_URL


class TestSqliteFileAsync(_Async):
    url = SQLITE_FILE_URL


class TestPostgres(_Sync):
    url = POSTGRES_URL


class TestPostgresAsync(_Async):
    url = POSTGRES_URL


class TestMariaDB(_Sync):
    url = MYSQL_URL


class TestMariaDBAsync(_Async):
    url = MYSQL_URL
