"""The asyncio file store: ``persisty.files.aio.connect(url, catalog=…)`` and
``persisty.aio.connect(url).files(name)`` give :class:`AsyncFileStore` objects whose methods
are awaitable.

Example::

    import persisty.files.aio
    files = persisty.files.aio.connect("memory://")
    info = await files.put("a.txt", b"hello")
    async for piece in await files.open("a.txt"):
        ...
"""

from persisty.files._async.open import chunked_files, connect
from persisty.files._async.reader import AsyncFileReader
from persisty.files._async.store import AsyncFileStore
from persisty.files._model import FileInfo, Limits, UploadGrant, UploadPart

__all__ = [
    "AsyncFileReader",
    "AsyncFileStore",
    "FileInfo",
    "Limits",
    "UploadGrant",
    "UploadPart",
    "chunked_files",
    "connect",
]
