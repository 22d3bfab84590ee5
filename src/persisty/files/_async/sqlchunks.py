"""Chunks in a SQL database as raw rows (async; the sync twin ``_sync/sqlchunks.py`` is
generated).

Through the generic store a chunk is an ordinary item, which a SQL table keeps twice (its
``bytes`` column and the base64 inside the item's canonical JSON, which the etag hashes
too). Here each chunk is one row of the ``FileChunkData`` table whose ``data`` column
holds the bytes alone: a batch of chunks is one ``executemany`` in one transaction, a
range of chunks one ``SELECT … IN (…)`` of that column. The table is an ordinary store's
(created, recorded, migrated and dropped with the database's other tables); its items
carry ``blob``, ``index`` and ``size``, never the bytes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from persisty.files._async.blobs import AsyncChunkBlobs, chunk_id, chunk_size_of
from persisty.files._model import DEFAULT_CHUNK_SIZE, FileBlob, FileChunk, FileChunkData
from persisty.query import F

if TYPE_CHECKING:  # the SQL backend imports the store, which opens file stores: no cycle
    from persisty.backends.sql import AsyncSqlDatabase, AsyncSqlStore

SQL_BATCH_BYTES = 4 * 1024 * 1024  # per transaction: the fastest of 4 and 16 MiB on SQLite
SQL_WINDOW_BYTES = 16 * 1024 * 1024  # per SELECT: fewer, larger queries read faster


def raw_chunks(db: Any) -> tuple[AsyncSqlDatabase, AsyncSqlStore] | None:
    """``db`` and its ``FileChunkData`` store when ``db`` is a SQL database (it has the
    ``executor``, ``tables`` and ``dialect`` of one, and its stores a table ``schema``),
    else ``None``."""
    if not all(hasattr(db, a) for a in ("executor", "tables", "dialect", "store")):
        return None
    store = db.store(FileChunkData)
    if not hasattr(store, "schema"):
        return None
    return cast("AsyncSqlDatabase", db), cast("AsyncSqlStore", store)


class AsyncSqlChunkBlobs(AsyncChunkBlobs):
    """Blobs as chunks in a SQL database, one raw row per chunk (see the module).

    Blob ids end with ``r<chunk size>``; a blob whose id ends with ``c<chunk size>`` was
    written as ``FileChunk`` items (by an earlier version) and is still read and deleted
    as such.
    """

    marker = "r"

    def __init__(
        self,
        store: str,
        db: AsyncSqlDatabase,
        rows: AsyncSqlStore,
        *,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        batch_bytes: int = SQL_BATCH_BYTES,
        window_bytes: int = SQL_WINDOW_BYTES,
    ) -> None:
        super().__init__(
            store,
            db.store(FileBlob),
            rows,
            chunk_size=chunk_size,
            batch_bytes=batch_bytes,
            window_bytes=window_bytes,
        )
        self.db = db
        self.schema = schema = rows.schema
        key = schema.key_cols[0].quoted
        data = schema.by_name["data"]
        self._data_at = schema.columns.index(data)
        # quoted names of the model, values only as parameters
        self._select = f"SELECT {key}, {data.quoted} FROM {schema.quoted} WHERE {key} IN "  # noqa: S608
        self._ph = db.dialect.ph

    @staticmethod
    def _is_raw(blob_id: str) -> bool:
        return blob_id.endswith(f"r{chunk_size_of(blob_id)}")

    async def _store_chunks(self, blob_id: str, first: int, chunks: list[bytes]) -> None:
        """Insert the chunks' rows with one ``executemany`` in one transaction."""
        schema = self.schema
        await self.db.tables.ensure(schema)
        items = [
            FileChunkData(id=chunk_id(blob_id, i), blob=blob_id, index=i, size=len(data))
            for i, data in enumerate(chunks, first)
        ]
        at = self._data_at
        rows = [
            (*row[:at], data, *row[at + 1 :])
            for row, data in zip(schema.insert_rows(items), chunks, strict=True)
        ]
        executor = self.db.executor
        async with executor.connection(schema) as conn, executor.transaction(conn):
            await executor.run_many(conn, schema.sql_insert, rows, schema)

    async def _fetch(self, blob_id: str, indexes: range) -> list[bytes | None]:
        """The ``data`` column of the chunks' rows (one ``SELECT``)."""
        ids = [chunk_id(blob_id, i) for i in indexes]
        if not self._is_raw(blob_id):
            found = await self.db.store(FileChunk).read_batch(ids)
            return [None if c is None else c.data for c in found]
        await self.db.tables.ensure(self.schema)
        sql = f"{self._select}({', '.join([self._ph] * len(ids))})"
        rows: list[Any] = await self.db.executor.query(sql, ids, self.schema)
        got = {row[0]: row[1] for row in rows}
        return [None if (data := got.get(i)) is None else bytes(data) for i in ids]

    async def delete(self, blob_id: str) -> None:
        if not self._is_raw(blob_id):
            await self.db.store(FileChunk).delete_all(F.blob == blob_id)
        await super().delete(blob_id)
