"""The file store conformance suite on every backend: memory, chunks in every engine
(memory, directory, SQLite, PostgreSQL, MariaDB, Redis, DynamoDB), a directory, and S3 on
moto_server; sync everywhere, async on a representative few."""

from __future__ import annotations

from typing import ClassVar

from tests.files._engines import ENGINES, NAMESPACE, ROOT, dynamodb_url, s3_url

import persisty
import persisty.aio
import persisty.files
import persisty.files.aio
from persisty.files import AsyncFileStore, FileStore, Limits
from persisty.store import Database
from persisty.testing import AsyncFileStoreConformance, FileStoreConformance


class _Chunks(FileStoreConformance):
    """Chunks in one database per class (fresh file store names isolate the tests)."""

    url = ""
    databases: ClassVar[dict[str, Database]] = {}

    def database(self) -> Database:
        url = self.url or dynamodb_url()
        if url not in self.databases:
            self.databases[url] = persisty.connect(url, namespace=NAMESPACE)
        return self.databases[url]

    def open_files(self, name: str, limits: Limits | None = None) -> FileStore:
        return self.database().files(name, limits=limits, chunk_size=64 * 1024)


class TestChunksMemory(_Chunks):
    url = ENGINES["memory"]


class TestChunksFileBackend(_Chunks):
    url = ENGINES["file"]


class TestChunksSqlite(_Chunks):
    url = ENGINES["sqlite"]


class TestChunksPostgres(_Chunks):
    url = ENGINES["postgres"]


class TestChunksMariaDB(_Chunks):
    url = ENGINES["mariadb"]


class TestChunksRedis(_Chunks):
    url = ENGINES["redis"]


class TestChunksDynamoDB(_Chunks):
    concurrent_writers = 20


class TestMemory(FileStoreConformance):
    def open_files(self, name: str, limits: Limits | None = None) -> FileStore:
        return persisty.files.connect("memory://", name=name, limits=limits)


class TestDirectory(FileStoreConformance):
    def open_files(self, name: str, limits: Limits | None = None) -> FileStore:
        return persisty.files.connect(
            f"dir://{ROOT / 'dir'}",
            name=name,
            limits=limits,
            catalog=ENGINES["sqlite"],
            namespace=NAMESPACE,
        )


class TestS3(FileStoreConformance):
    def open_files(self, name: str, limits: Limits | None = None) -> FileStore:
        return persisty.files.connect(
            s3_url(), name=name, limits=limits, catalog=ENGINES["sqlite"], namespace=NAMESPACE
        )


class TestMemoryAsync(AsyncFileStoreConformance):
    async def open_files(self, name: str, limits: Limits | None = None) -> AsyncFileStore:
        return persisty.files.aio.connect("memory://", name=name, limits=limits)


class TestChunksSqliteAsync(AsyncFileStoreConformance):
    async def open_files(self, name: str, limits: Limits | None = None) -> AsyncFileStore:
        return persisty.files.aio.connect(
            ENGINES["sqlite"], name=name, limits=limits, namespace=NAMESPACE, chunk_size=64 * 1024
        )


class TestChunksPostgresAsync(AsyncFileStoreConformance):
    async def open_files(self, name: str, limits: Limits | None = None) -> AsyncFileStore:
        return persisty.files.aio.connect(
            ENGINES["postgres"], name=name, limits=limits, namespace=NAMESPACE, chunk_size=64 * 1024
        )


class TestDirectoryAsync(AsyncFileStoreConformance):
    async def open_files(self, name: str, limits: Limits | None = None) -> AsyncFileStore:
        return persisty.files.aio.connect(
            f"dir://{ROOT / 'dir'}",
            name=name,
            limits=limits,
            catalog=ENGINES["sqlite"],
            namespace=NAMESPACE,
        )


class TestS3Async(AsyncFileStoreConformance):
    async def open_files(self, name: str, limits: Limits | None = None) -> AsyncFileStore:
        return persisty.files.aio.connect(
            s3_url(), name=name, limits=limits, catalog=ENGINES["sqlite"], namespace=NAMESPACE
        )
