"""Where a file store keeps its bytes: immutable blobs named by fresh ids (async; the sync
twin ``_sync/blobs.py`` is generated).

Blobs are written once and never changed, so a reader never sees partial content: a file
becomes visible only when the catalog points at a complete blob. A crash leaves at most a
blob nothing points at, which ``gc`` removes.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import tempfile
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from persisty.errors import IntegrityError, NotFound, PersistyError
from persisty.files._model import (
    DEFAULT_CHUNK_SIZE,
    FileBlob,
    FileChunk,
    FileUpload,
    Limits,
    UploadGrant,
    new_blob_id,
    now_utc,
)
from persisty.query import F
from persisty.store import AsyncStore, Edit

READ_PIECE = 1024 * 1024
_TEMPORARY = re.compile(r"^[0-9a-z]+\.[A-Za-z0-9_]+$")


class AsyncBlobs(ABC):
    """A place for immutable blobs. ``hosted`` backends have no URL of their own: the file
    store signs grants and URLs for them and a server (the HTTP routes) checks them."""

    hosted = True
    min_part_size = 64 * 1024

    def new_id(self) -> str:
        """A fresh blob id (time-ordered, see ``new_blob_id``)."""
        return new_blob_id()

    @abstractmethod
    async def write(self, blob_id: str, data: AsyncIterator[bytes]) -> None:
        """Store the stream as blob ``blob_id``; nothing is left of it when this raises."""

    @abstractmethod
    def read(self, blob_id: str, start: int, end: int) -> AsyncIterator[bytes]:
        """The bytes ``[start, end)`` of a blob, in pieces (``IntegrityError`` when gone)."""

    async def read_all(self, blob_id: str, start: int, end: int) -> bytes:
        """The bytes ``[start, end)`` of a blob at once."""
        return b"".join([piece async for piece in self.read(blob_id, start, end)])

    @abstractmethod
    async def stat(self, blob_id: str) -> int | None:
        """The size of a complete blob, ``None`` when it is not there."""

    async def exists(self, blob_id: str) -> bool:
        """Whether the blob is there."""
        return await self.stat(blob_id) is not None

    @abstractmethod
    async def delete(self, blob_id: str) -> None:
        """Remove a blob (nothing happens when it is not there)."""

    @abstractmethod
    async def ids(self) -> list[str]:
        """Every blob id of this file store."""

    async def close(self) -> None:  # noqa: B027
        """Release what the backend holds."""

    # hosted backends keep the defaults: the file store signs, receives and assembles
    # uploads itself; S3 overrides these to hand the work to S3

    async def presign_download(
        self, blob_id: str, ttl: int, content_type: str, disposition: str
    ) -> str | None:
        """A URL of the backend's own that serves the blob, or ``None``."""
        return None

    async def start_upload(self, record: FileUpload) -> FileUpload:
        """Prepare the backend for an upload (S3 starts a multipart upload)."""
        return record

    async def presign_upload(self, record: FileUpload, limits: Limits) -> UploadGrant | None:
        """A grant that uploads to the backend directly, or ``None``."""
        return None

    async def finish_upload(
        self, record: FileUpload, parts: Sequence[Mapping[str, Any]] | None
    ) -> tuple[str, int, str, bytes] | None:
        """``(blob, size, sha256, first bytes)`` of a finished direct upload, or ``None``."""
        return None

    async def abort_upload(self, record: FileUpload) -> None:  # noqa: B027
        """Drop what the backend holds of a pending upload."""


class AsyncMemoryBlobs(AsyncBlobs):
    """Blobs in this process's memory (``files.connect("memory://")``)."""

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}

    async def write(self, blob_id: str, data: AsyncIterator[bytes]) -> None:
        parts = [piece async for piece in data]
        self.blobs[blob_id] = b"".join(parts)

    async def read(self, blob_id: str, start: int, end: int) -> AsyncIterator[bytes]:
        blob = self.blobs.get(blob_id)
        if blob is None:
            raise IntegrityError(f"blob {blob_id} is missing")
        for at in range(start, end, READ_PIECE):
            yield blob[at : min(end, at + READ_PIECE)]

    async def read_all(self, blob_id: str, start: int, end: int) -> bytes:
        blob = self.blobs.get(blob_id)
        if blob is None:
            raise IntegrityError(f"blob {blob_id} is missing")
        return blob[start:end]

    async def stat(self, blob_id: str) -> int | None:
        blob = self.blobs.get(blob_id)
        return None if blob is None else len(blob)

    async def delete(self, blob_id: str) -> None:
        self.blobs.pop(blob_id, None)

    async def ids(self) -> list[str]:
        return list(self.blobs)


def chunk_id(blob_id: str, index: int) -> str:
    """The key of chunk ``index`` of a blob."""
    return f"{blob_id}.{index:08d}"


_CHUNK_SIZE = re.compile(r"[cr]([0-9]+)$")


def chunk_size_of(blob_id: str) -> int:
    """A chunked blob's chunk size, which its id carries after ``c`` (chunks as items) or
    ``r`` (chunks as raw rows of a SQL table)."""
    found = _CHUNK_SIZE.search(blob_id)
    return int(found.group(1)) if found else DEFAULT_CHUNK_SIZE


async def rechunk(data: AsyncIterator[bytes], size: int) -> AsyncIterator[bytes]:
    """The stream cut into pieces of exactly ``size`` bytes (the last one shorter), each
    byte copied once at most."""
    buffer = bytearray()
    async for piece in data:
        view = memoryview(piece)
        at = 0
        if buffer:
            at = min(len(view), size - len(buffer))
            buffer += view[:at]
            if len(buffer) < size:
                continue
            yield bytes(buffer)
            buffer.clear()
        while len(view) - at >= size:
            whole = at == 0 and len(view) == size and type(piece) is bytes
            yield piece if whole else bytes(view[at : at + size])
            at += size
        buffer += view[at:]
    if buffer:
        yield bytes(buffer)


class AsyncChunkBlobs(AsyncBlobs):
    """Blobs as chunks (``chunk_size`` bytes each, 256 KiB by default) in two ordinary
    stores of any persisty database: ``FileBlob`` records (one per blob, written before its
    chunks and deleted after them) and ``FileChunk`` records. A range reads only the chunks
    it covers, about ``window_bytes`` (default ``batch_bytes``) per ``read_batch``; a
    stream holds one window at a time.

    Example::

        blobs = AsyncChunkBlobs("docs", db.store(FileBlob), db.store(FileChunk))
        assert await blobs.stat("no-such-blob") is None
    """

    marker = "c"

    def __init__(
        self,
        store: str,
        blobs: AsyncStore[FileBlob],
        chunks: AsyncStore[Any],
        *,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        batch_bytes: int = 4 * 1024 * 1024,
        window_bytes: int | None = None,
    ) -> None:
        self.store = store
        self.blobs = blobs
        self.chunks = chunks
        self.chunk_size = chunk_size
        self.batch = max(1, batch_bytes // chunk_size)
        self.window = max(1, (window_bytes or batch_bytes) // chunk_size)

    def new_id(self) -> str:
        return f"{new_blob_id()}{self.marker}{self.chunk_size}"

    async def write(self, blob_id: str, data: AsyncIterator[bytes]) -> None:
        size = chunk_size_of(blob_id)
        await self.blobs.create(
            FileBlob(id=blob_id, store=self.store, chunk_size=size, created_at=now_utc())
        )
        try:
            batch: list[bytes] = []
            index = total = 0
            async for chunk in rechunk(data, size):
                batch.append(chunk)
                total += len(chunk)
                if len(batch) >= self.batch:
                    await self._store_chunks(blob_id, index, batch)
                    index += len(batch)
                    batch = []
            if batch:
                await self._store_chunks(blob_id, index, batch)
            await self.blobs.patch(blob_id, {"size": total})
        except BaseException:
            with contextlib.suppress(PersistyError):
                await self.delete(blob_id)
            raise

    async def _store_chunks(self, blob_id: str, first: int, chunks: list[bytes]) -> None:
        """Write chunks ``first, first + 1, …`` of a blob (one non-atomic ``edit_batch``)."""
        edits = [
            Edit.create(FileChunk(id=chunk_id(blob_id, i), blob=blob_id, index=i, data=data))
            for i, data in enumerate(chunks, first)
        ]
        for r in await self.chunks.edit_batch(edits, atomic=False):
            if not r.ok:
                raise PersistyError(f"writing a chunk failed: {r.code}: {r.message}")

    async def _fetch(self, blob_id: str, indexes: range) -> list[bytes | None]:
        """The bytes of chunks ``indexes`` of a blob, ``None`` for a missing one (one
        ``read_batch``)."""
        found = await self.chunks.read_batch([chunk_id(blob_id, i) for i in indexes])
        return [None if c is None else c.data for c in found]

    async def read(self, blob_id: str, start: int, end: int) -> AsyncIterator[bytes]:
        if start >= end:
            if not await self.exists(blob_id):
                raise IntegrityError(f"blob {blob_id} is missing")
            return
        size = chunk_size_of(blob_id)
        first, last = start // size, (end - 1) // size
        for window in range(first, last + 1, self.window):
            indexes = range(window, min(last + 1, window + self.window))
            found = await self._fetch(blob_id, indexes)
            for i, data in zip(indexes, found, strict=True):
                if data is None:
                    raise IntegrityError(f"chunk {i} of blob {blob_id} is missing")
                base = i * size
                lo, hi = max(start - base, 0), min(end - base, size)
                if len(data) < hi:
                    raise IntegrityError(f"chunk {i} of blob {blob_id} is short")
                yield data if (lo, hi) == (0, len(data)) else data[lo:hi]

    async def read_all(self, blob_id: str, start: int, end: int) -> bytes:
        """The range assembled in one buffer of its size, each chunk copied into it once
        while it is still in the CPU cache (no list of pieces, no join)."""
        if start >= end:
            return b"".join([piece async for piece in self.read(blob_id, start, end)])
        out = io.BytesIO()
        out.seek(end - start - 1)
        out.write(b"\0")  # sized once: getvalue() then hands the buffer over, uncopied
        view = out.getbuffer()
        at = 0
        try:
            async for piece in self.read(blob_id, start, end):
                view[at : at + len(piece)] = piece
                at += len(piece)
        finally:
            view.release()
        return out.getvalue()

    async def stat(self, blob_id: str) -> int | None:
        found = await self.blobs.read(blob_id)
        return None if found is None else found.size

    async def delete(self, blob_id: str) -> None:
        await self.chunks.delete_all(F.blob == blob_id)
        with contextlib.suppress(NotFound):
            await self.blobs.delete(blob_id)

    async def ids(self) -> list[str]:
        return [b.id async for b in self.blobs.search_all(F.store == self.store)]


class AsyncDirectoryBlobs(AsyncBlobs):
    """Blobs as files under ``<root>/blobs/`` (``files.connect("dir:///path", …)``).

    A blob is written to a temporary file in ``<root>/tmp/``, fsynced and renamed into
    place. Blob ids are generated hex, never a user's key, so no path outside the root is
    ever formed from input.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.tmp = self.root / "tmp"
        self.dir = self.root / "blobs"
        self.tmp.mkdir(parents=True, exist_ok=True)
        self.dir.mkdir(parents=True, exist_ok=True)

    def _path(self, blob_id: str) -> Path:
        if not blob_id.isalnum():
            raise IntegrityError(f"not a blob id: {blob_id!r}")
        return self.dir / blob_id[-2:] / blob_id

    async def write(self, blob_id: str, data: AsyncIterator[bytes]) -> None:
        path = self._path(blob_id)
        fd, tmp = tempfile.mkstemp(dir=self.tmp, prefix=blob_id + ".")
        try:
            with os.fdopen(fd, "wb") as f:
                async for piece in data:
                    f.write(piece)
                f.flush()
                os.fsync(f.fileno())
            path.parent.mkdir(exist_ok=True)
            os.replace(tmp, path)
            dir_fd = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    async def read(self, blob_id: str, start: int, end: int) -> AsyncIterator[bytes]:
        try:
            f = self._path(blob_id).open("rb")
        except FileNotFoundError:
            raise IntegrityError(f"blob {blob_id} is missing") from None
        with f:
            f.seek(start)
            left = end - start
            while left > 0:
                piece = f.read(min(left, READ_PIECE))
                if not piece:
                    raise IntegrityError(f"blob {blob_id} is short")
                left -= len(piece)
                yield piece

    async def read_all(self, blob_id: str, start: int, end: int) -> bytes:
        try:
            f = self._path(blob_id).open("rb", buffering=0)
        except FileNotFoundError:
            raise IntegrityError(f"blob {blob_id} is missing") from None
        with f:
            f.seek(start)
            data = f.read(end - start)
        if len(data) != end - start:
            raise IntegrityError(f"blob {blob_id} is short")
        return bytes(data)

    async def stat(self, blob_id: str) -> int | None:
        try:
            return self._path(blob_id).stat().st_size
        except FileNotFoundError:
            return None

    async def delete(self, blob_id: str) -> None:
        # a name with a dot is a temporary file a crashed write left behind (see ids())
        path = self.tmp / blob_id if _TEMPORARY.match(blob_id) else self._path(blob_id)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)

    async def ids(self) -> list[str]:
        found = [p.name for p in self.dir.glob("*/*") if p.is_file()]
        # a temporary file a crash left behind is named after its blob
        found.extend(p.name for p in self.tmp.iterdir() if p.is_file())
        return found
