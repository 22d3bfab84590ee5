"""Chunks in a database: the default 256 KiB chunk fits every engine, and a range reads
only the chunks it covers, in one read_batch."""

from __future__ import annotations

import dataclasses
import hashlib
import uuid
from collections.abc import Sequence

import pytest
from tests.files._engines import ENGINES, NAMESPACE, dynamodb_url

import persisty
from persisty.backends.sql import SqlDatabase, SqlStore
from persisty.errors import ValidationError
from persisty.files import (
    ChunkBlobs,
    FileBlob,
    FileChunk,
    FileChunkData,
    FileInfo,
    FileStore,
    FileUpload,
    SqlChunkBlobs,
)
from persisty.query import F
from persisty.store import SqlAccess, WrappedStore
from persisty.testing._files_data import payload

KIB = 1024


@pytest.mark.parametrize("engine", [*ENGINES, "dynamodb"])
def test_the_default_chunk_size_fits_every_engine(engine: str) -> None:
    url = dynamodb_url() if engine == "dynamodb" else ENGINES[engine]
    db = persisty.connect(url, namespace=NAMESPACE)
    files = db.files("defaultchunks")
    try:
        data = payload(1024 * KIB + 5, 9)
        info = files.put("k", data)
        raw = engine in ("sqlite", "postgres", "mariadb")  # raw rows, else FileChunk items
        assert info.blob.endswith(f"{'r' if raw else 'c'}{256 * KIB}")
        assert info.etag == hashlib.sha256(data).hexdigest()
        assert files.read("k") == data and files.read("k", start=-7) == data[-7:]
        files.delete("k")
        assert files.fsck().orphans == []
    finally:
        db.close()


class CountingChunks(WrappedStore[FileChunk]):
    """The chunk store, counting the chunks each read_batch asks for."""

    def __init__(self, inner: persisty.Store[FileChunk]) -> None:
        super().__init__(inner)
        self.batches: list[int] = []

    def read_batch(self, keys: Sequence[str]) -> list[FileChunk | None]:
        self.batches.append(len(keys))
        return self.inner.read_batch(keys)


def test_a_range_reads_only_the_chunks_it_covers() -> None:
    db = persisty.connect("sqlite://")
    chunks = CountingChunks(db.store(FileChunk))
    blobs = ChunkBlobs("ranged", db.store(FileBlob), chunks, chunk_size=64 * KIB)
    files = FileStore("ranged", db.store(FileInfo), db.store(FileUpload), blobs)
    data = payload(1024 * KIB, 10)
    files.put("k", data)
    for start, end, covered in [
        (0, 10, 1),
        (-10, None, 1),
        (64 * KIB - 1, 64 * KIB + 1, 2),
        (100 * KIB, 300 * KIB, 4),
        (0, None, 16),
    ]:
        chunks.batches.clear()
        assert files.read("k", start=start, end=end) == data[start:end]
        assert chunks.batches == [covered], (start, end)
    db.close()


class CountingRows(SqlChunkBlobs):
    """Chunks as raw SQL rows, counting the chunks each SELECT asks for."""

    batches: list[int]

    def _fetch(self, blob_id: str, indexes: range) -> list[bytes | None]:
        self.batches.append(len(indexes))
        return super()._fetch(blob_id, indexes)


@pytest.mark.parametrize("engine", ["sqlite", "postgres", "mariadb"])
def test_a_range_of_raw_rows_reads_only_the_chunks_it_covers(engine: str) -> None:
    db = persisty.connect(ENGINES[engine], namespace=NAMESPACE)
    rows = db.store(FileChunkData)
    assert isinstance(db, SqlDatabase) and isinstance(rows, SqlStore)
    blobs = CountingRows("rawranged", db, chunk_size=64 * KIB, batch_bytes=64 * 64 * KIB)
    blobs.batches = []
    files = FileStore("rawranged", db.store(FileInfo), db.store(FileUpload), blobs)
    data = payload(1024 * KIB, 11)
    try:
        info = files.put("k", data)
        assert info.blob.endswith(f"r{64 * KIB}")
        # the bytes are in the data column alone: the item's document does not carry them
        stored = rows.search(F.blob == info.blob, order=[+F.index], limit=100).items
        assert [(c.index, c.size, c.data) for c in stored] == [
            (i, 64 * KIB, None) for i in range(16)
        ]
        for start, end, covered in [
            (0, 10, 1),
            (-10, None, 1),
            (64 * KIB - 1, 64 * KIB + 1, 2),
            (100 * KIB, 300 * KIB, 4),
            (0, None, 16),
        ]:
            blobs.batches.clear()
            assert files.read("k", start=start, end=end) == data[start:end]
            assert blobs.batches == [covered], (start, end)
        # beyond 1 MiB a read is one SELECT per 1 MiB window, each only of covered chunks
        big = payload(4 * 1024 * KIB + 5, 12)
        files.put("big", big)
        for start, end, windows in [
            (0, None, [16, 16, 16, 16, 1]),
            (64 * KIB + 1, 3 * 1024 * KIB, [16, 16, 15]),
            (-(64 * KIB + 5), None, [2]),
        ]:
            blobs.batches.clear()
            assert files.read("big", start=start, end=end) == big[start:end]
            assert blobs.batches == windows, (start, end)
            blobs.batches.clear()
            assert b"".join(files.open("big", start=start, end=end)) == big[start:end]
            assert blobs.batches == windows, (start, end)
        files.delete("big")
        files.delete("k")
        assert rows.count(F.blob == info.blob) == 0 and files.fsck().orphans == []
    finally:
        db.close()


@pytest.mark.parametrize("engine", [*ENGINES, "dynamodb"])
def test_sql_databases_declare_their_raw_bytes_access(engine: str) -> None:
    url = dynamodb_url() if engine == "dynamodb" else ENGINES[engine]
    db = persisty.connect(url, namespace=NAMESPACE)
    try:
        sql = engine in ("sqlite", "postgres", "mariadb")
        assert isinstance(db, SqlAccess) is sql
        if not sql:
            with pytest.raises(TypeError, match="is no Database declaring SqlAccess"):
                SqlChunkBlobs("nosql", db)
            return
        assert isinstance(db, SqlAccess)
        blob = f"access{uuid.uuid4().hex[:8]}"
        values = [b"", b"\x00\xff" * 3, payload(70 * KIB, 13)]
        items = [
            FileChunkData(id=f"{blob}.{i}", blob=blob, index=i, size=len(v))
            for i, v in enumerate(values)
        ]
        db.insert_with_bytes(FileChunkData, items, "data", values)
        keys = [f"{blob}.2", f"{blob}.9", f"{blob}.0", f"{blob}.1"]
        assert db.read_bytes(FileChunkData, keys, "data") == [values[2], None, b"", values[1]]
        assert db.read_bytes(FileChunkData, [], "data") == []
        # the item read through the store carries no copy of the bytes
        assert db.store(FileChunkData).read(f"{blob}.2") == dataclasses.replace(items[2], data=None)
        with pytest.raises(ValidationError) as e:
            db.read_bytes(FileChunkData, keys, "nosuch")
        assert e.value.field == "nosuch"
        db.store(FileChunkData).delete_all(F.blob == blob)
    finally:
        db.close()
