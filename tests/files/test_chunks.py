"""Chunks in a database: the default 256 KiB chunk fits every engine, and a range reads
only the chunks it covers, in one read_batch."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import pytest
from tests.files._engines import ENGINES, NAMESPACE, dynamodb_url

import persisty
from persisty.files import ChunkBlobs, FileBlob, FileChunk, FileInfo, FileStore, FileUpload
from persisty.store import WrappedStore
from persisty.testing._files_sync import payload

KIB = 1024


@pytest.mark.parametrize("engine", [*ENGINES, "dynamodb"])
def test_the_default_chunk_size_fits_every_engine(engine: str) -> None:
    url = dynamodb_url() if engine == "dynamodb" else ENGINES[engine]
    db = persisty.connect(url, namespace=NAMESPACE)
    files = db.files("defaultchunks")
    try:
        data = payload(1024 * KIB + 5, 9)
        info = files.put("k", data)
        assert info.blob.endswith(f"c{256 * KIB}")
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
