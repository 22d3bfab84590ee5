"""Opening file stores by URL (async; the sync twin ``_sync/open.py`` is generated)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from persisty.errors import ValidationError
from persisty.files._async.blobs import (
    AsyncBlobs,
    AsyncChunkBlobs,
    AsyncDirectoryBlobs,
    AsyncMemoryBlobs,
)
from persisty.files._async.sqlchunks import AsyncSqlChunkBlobs
from persisty.files._async.store import AsyncFileStore
from persisty.files._databases import AsyncDatabases
from persisty.files._model import (
    DEFAULT_CHUNK_SIZE,
    FileBlob,
    FileChunk,
    FileInfo,
    FileSecret,
    FileUpload,
    Limits,
    check_store_name,
)
from persisty.store import AsyncDatabase, AsyncSqlAccess

MAX_CHUNK_SIZE = 350 * 1024  # DynamoDB's 400 KB item, with room for the rest of the item


def chunked_files(
    db: AsyncDatabase,
    name: str = "files",
    *,
    limits: Limits | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    secret: bytes | str | None = None,
    base_url: str | None = None,
    clock: Callable[[], datetime] | None = None,
    closing: tuple[Any, ...] = (),
    batch_bytes: int = 4 * 1024 * 1024,
) -> AsyncFileStore:
    """A file store whose blobs are chunks in ``db`` (what ``db.files(name)`` gives):
    ``chunk_size`` bytes per chunk, about ``batch_bytes`` per write or read batch.

    Example::

        files = chunked_files_async(sql_db, "avatars", chunk_size=64 * 1024)
        info = await files.put("big.bin", bytes(100_000))
        assert info.size == 100_000 and info.blob.endswith("r65536")  # 2 chunks
    """
    check_store_name(name)
    if not isinstance(chunk_size, int) or not 1024 <= chunk_size <= MAX_CHUNK_SIZE:
        raise ValidationError(
            f"chunk_size is from 1 KiB to {MAX_CHUNK_SIZE} bytes", field="chunk_size"
        )
    blobs = chunk_blobs(name, db, chunk_size, batch_bytes)
    return _file_store(name, db, blobs, limits, secret, base_url, clock, closing)


def chunk_blobs(
    name: str, db: AsyncDatabase, chunk_size: int, batch_bytes: int = 4 * 1024 * 1024
) -> AsyncChunkBlobs:
    """Chunks in ``db``: raw rows of a SQL table on a database that declares
    :class:`~persisty.store.AsyncSqlAccess` (no copy of the bytes in a JSON document),
    ``FileChunk`` items on every other one."""
    if isinstance(db, AsyncDatabase) and isinstance(db, AsyncSqlAccess):
        return AsyncSqlChunkBlobs(name, db, chunk_size=chunk_size, batch_bytes=batch_bytes)
    return AsyncChunkBlobs(
        name,
        db.store(FileBlob),
        db.store(FileChunk),
        chunk_size=chunk_size,
        batch_bytes=batch_bytes,
    )


def _file_store(
    name: str,
    db: AsyncDatabase,
    blobs: AsyncBlobs,
    limits: Limits | None,
    secret: bytes | str | None,
    base_url: str | None,
    clock: Callable[[], datetime] | None,
    closing: tuple[Any, ...],
) -> AsyncFileStore:
    return AsyncFileStore(
        name,
        db.store(FileInfo),
        db.store(FileUpload),
        blobs,
        limits=limits,
        secret=secret,
        secrets=db.store(FileSecret),
        base_url=base_url,
        clock=clock,
        closing=closing,
    )


def connect(
    url: str,
    *,
    catalog: AsyncDatabase | str | None = None,
    name: str = "files",
    limits: Limits | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    secret: bytes | str | None = None,
    base_url: str | None = None,
    clock: Callable[[], datetime] | None = None,
    namespace: str | None = None,
) -> AsyncFileStore:
    """Open a file store by URL (the databases it opens use ``namespace``).

    - ``memory://``: catalog and blobs in this process.
    - ``dir:///var/lib/app/files``: blobs as files under that directory (``<dir>/<name>/``);
      the catalog in ``catalog`` (a database or its URL), else in ``file://<dir>/catalog``.
    - ``s3://bucket/prefix?region=…&endpoint_url=…``: blobs as S3 objects under
      ``prefix/<name>/``; ``catalog`` is required.
    - any database URL (``sqlite:///app.db``, ``postgresql://…`` …): chunks in it, and the
      catalog there too (the same as ``persisty.aio.connect(url).files(name)``).

    Example::

        files = persisty.files.aio.connect("dir://./files", catalog="sqlite:///app.db")
        await files.put("a.txt", b"hello")
        assert await files.read("a.txt") == b"hello"
        await files.close()
    """
    check_store_name(name)
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    closing: list[Any] = []

    def database(default: str | None) -> AsyncDatabase:
        if isinstance(catalog, AsyncDatabase):
            return catalog
        target = catalog or default
        if target is None:
            raise ValidationError(
                f"a {scheme}:// file store needs a catalog database", field="catalog"
            )
        db = AsyncDatabases.connect(target, namespace=namespace)
        closing.append(db)
        return db

    if scheme == "memory":
        db = database("memory://")
        return _file_store(
            name, db, AsyncMemoryBlobs(), limits, secret, base_url, clock, tuple(closing)
        )
    if scheme == "dir":
        root = Path(unquote(parts.netloc + parts.path))
        if not str(root):
            raise ValidationError("dir:// needs a directory (dir:///path)", field="url")
        db = database(f"file://{root.resolve() / 'catalog'}")
        blobs: AsyncBlobs = AsyncDirectoryBlobs(root / name)
        return _file_store(name, db, blobs, limits, secret, base_url, clock, tuple(closing))
    if scheme == "s3":
        from persisty.files._async.s3 import AsyncS3Blobs

        db = database(None)
        blobs = AsyncS3Blobs(url, name)
        return _file_store(name, db, blobs, limits, secret, base_url, clock, tuple(closing))
    db = database(url) if catalog is None else database(None)
    if catalog is not None:
        # chunks in the URL's database, the catalog in another one
        chunks_db = AsyncDatabases.connect(url, namespace=namespace)
        closing.append(chunks_db)
        blobs = chunk_blobs(name, chunks_db, chunk_size)
        return _file_store(name, db, blobs, limits, secret, base_url, clock, tuple(closing))
    return chunked_files(
        db,
        name,
        limits=limits,
        chunk_size=chunk_size,
        secret=secret,
        base_url=base_url,
        clock=clock,
        closing=tuple(closing),
    )
