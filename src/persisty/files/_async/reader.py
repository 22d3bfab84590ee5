"""Reading a file store's bytes: the input forms a write takes and the streaming reader
(async; the sync twin ``_sync/reader.py`` is generated)."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterable, AsyncIterator, Iterable
from typing import IO
from urllib.parse import quote

from persisty.files._async.blobs import AsyncBlobs
from persisty.files._model import FileInfo

Data = bytes | bytearray | memoryview | IO[bytes] | AsyncIterable[bytes] | Iterable[bytes]
PIECE = 1024 * 1024


async def pieces(data: Data, size: int = PIECE) -> AsyncIterator[bytes]:
    """The bytes of ``data`` (bytes, a binary file, or an iterable of bytes) in pieces."""
    if isinstance(data, bytes | bytearray | memoryview):
        view = memoryview(data)
        for at in range(0, len(view), size):
            yield bytes(view[at : at + size])
    elif hasattr(data, "read"):
        while True:
            piece = data.read(size)
            if not piece:
                break
            yield piece
    elif isinstance(data, AsyncIterable):
        async for piece in data:
            yield bytes(piece)
    else:
        for piece in data:
            yield bytes(piece)


class AsyncFileReader:
    """A file being read: ``info``, the range ``[start, end)``, iteration over pieces of
    bytes, ``read()`` for all of them at once.

    Example::

        reader = await files.open("a.bin", start=-10)
        reader.info.size, reader.end - reader.start
        async for piece in reader:
            ...
    """

    def __init__(self, info: FileInfo, start: int, end: int, blobs: AsyncBlobs) -> None:
        self.info = info
        self.start = start
        self.end = end
        self._blobs = blobs

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._blobs.read(self.info.blob, self.start, self.end)

    async def read(self) -> bytes:
        """Every byte of the range."""
        return await self._blobs.read_all(self.info.blob, self.start, self.end)


@dataclasses.dataclass(frozen=True, slots=True)
class SignedDownload:
    """What a genuine download URL grants: the file and the ``Content-Disposition``."""

    info: FileInfo
    disposition: str


def content_disposition(disposition: str, filename: str) -> str:
    """A ``Content-Disposition`` value with the file name in RFC 5987 form."""
    return f"{disposition}; filename*=UTF-8''{quote(filename, safe='')}"
