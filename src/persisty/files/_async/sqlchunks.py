"""Chunks in a SQL database as raw rows (async; the sync twin ``_sync/sqlchunks.py`` is
generated).

Through the generic store a chunk is an ordinary item, which a SQL table keeps twice (its
``bytes`` column and the base64 inside the item's canonical JSON, which the etag hashes
too). Here each chunk is one row of the ``FileChunkData`` table whose ``data`` column
holds the bytes alone, written and read through the database's
:class:`~persisty.store.AsyncSqlAccess`: a batch of chunks is one ``executemany`` in one
transaction, a window of chunks one ``SELECT … IN (…)`` of that column. The table is an
ordinary store's (created, recorded, migrated and dropped with the database's other
tables); its items carry ``blob``, ``index`` and ``size``, never the bytes.
"""

from __future__ import annotations

from persisty.files._async.blobs import AsyncChunkBlobs, chunk_id, chunk_size_of
from persisty.files._model import DEFAULT_CHUNK_SIZE, FileBlob, FileChunk, FileChunkData
from persisty.query import F
from persisty.store import AsyncDatabase, AsyncSqlAccess

SQL_BATCH_BYTES = 4 * 1024 * 1024  # per transaction: the fastest of 4 and 16 MiB on SQLite
# per SELECT: a window this small stays in the CPU cache between the driver's copy and the
# copy into the read's buffer (1 MiB read 64 MiB at 1.6x the speed of 16 MiB windows)
SQL_WINDOW_BYTES = 1024 * 1024


class AsyncSqlChunkBlobs(AsyncChunkBlobs):
    """Blobs as chunks in a SQL database (one that declares
    :class:`~persisty.store.AsyncSqlAccess`), one raw row per chunk (see the module).

    Blob ids end with ``r<chunk size>``; a blob whose id ends with ``c<chunk size>`` was
    written as ``FileChunk`` items (by an earlier version) and is still read and deleted
    as such.

    Example::

        blobs = AsyncSqlChunkBlobs("avatars", sql_db)   # the blobs of sql_db.files("avatars")
        assert await blobs.stat("no-such-blob") is None
    """

    marker = "r"

    def __init__(
        self,
        store: str,
        db: AsyncDatabase,
        *,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        batch_bytes: int = SQL_BATCH_BYTES,
        window_bytes: int = SQL_WINDOW_BYTES,
    ) -> None:
        if not (isinstance(db, AsyncDatabase) and isinstance(db, AsyncSqlAccess)):
            raise TypeError(f"{type(db).__name__} is no AsyncDatabase declaring AsyncSqlAccess")
        super().__init__(
            store,
            db.store(FileBlob),
            db.store(FileChunkData),
            chunk_size=chunk_size,
            batch_bytes=batch_bytes,
            window_bytes=window_bytes,
        )
        self.db = db
        self.sql: AsyncSqlAccess = db

    @staticmethod
    def _is_raw(blob_id: str) -> bool:
        return blob_id.endswith(f"r{chunk_size_of(blob_id)}")

    async def _store_chunks(self, blob_id: str, first: int, chunks: list[bytes]) -> None:
        """Insert the chunks' rows with one ``executemany`` in one transaction."""
        items = [
            FileChunkData(id=chunk_id(blob_id, i), blob=blob_id, index=i, size=len(data))
            for i, data in enumerate(chunks, first)
        ]
        await self.sql.insert_with_bytes(FileChunkData, items, "data", chunks)

    async def _fetch(self, blob_id: str, indexes: range) -> list[bytes | None]:
        """The ``data`` column of the chunks' rows (one ``SELECT``)."""
        ids = [chunk_id(blob_id, i) for i in indexes]
        if not self._is_raw(blob_id):
            found = await self.db.store(FileChunk).read_batch(ids)
            return [None if c is None else c.data for c in found]
        return await self.sql.read_bytes(FileChunkData, ids, "data")

    async def delete(self, blob_id: str) -> None:
        if not self._is_raw(blob_id):
            await self.db.store(FileChunk).delete_all(F.blob == blob_id)
        await super().delete(blob_id)
