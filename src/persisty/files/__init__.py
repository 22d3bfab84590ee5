"""Binary files: a catalog of :class:`FileInfo` records in any persisty store plus immutable
blobs (chunks in any database, a directory, S3, or memory); ``persisty.files.aio`` is the
asyncio flavour.

A write streams into a new blob, computing its SHA-256 (the file's ``etag`` on every
backend) and size and sniffing its first bytes, and becomes visible only when the catalog
record is switched to the blob by one conditional write.

Example::

    import persisty
    files = persisty.connect("memory://").files("docs")
    info = files.put("a/hello.txt", b"hello world", content_type="text/plain")
    files.read("a/hello.txt", start=-5)         # b'world'
    files.list("a/").items                      # [FileInfo(key='a/hello.txt', …)]
"""

from persisty.files._async.blobs import (
    AsyncBlobs,
    AsyncChunkBlobs,
    AsyncDirectoryBlobs,
    AsyncMemoryBlobs,
)
from persisty.files._async.maintenance import AsyncFileMaintenance
from persisty.files._async.open import chunked_files as chunked_files_async
from persisty.files._async.reader import AsyncFileReader, SignedDownload
from persisty.files._async.sqlchunks import AsyncSqlChunkBlobs
from persisty.files._async.store import AsyncFileStore
from persisty.files._async.uploads import AsyncFileUploads, part_blob
from persisty.files._content import sniff
from persisty.files._model import (
    FileBlob,
    FileChunk,
    FileChunkData,
    FileInfo,
    FileSecret,
    FileUpload,
    FsckProblem,
    FsckReport,
    GcReport,
    Limits,
    UploadGrant,
    UploadPart,
    check_key,
    resolve_range,
)
from persisty.files._sync.blobs import Blobs, ChunkBlobs, DirectoryBlobs, MemoryBlobs
from persisty.files._sync.maintenance import FileMaintenance
from persisty.files._sync.open import chunked_files, connect
from persisty.files._sync.reader import FileReader
from persisty.files._sync.sqlchunks import SqlChunkBlobs
from persisty.files._sync.store import FileStore
from persisty.files._sync.uploads import FileUploads

__all__ = [
    "AsyncBlobs",
    "AsyncChunkBlobs",
    "AsyncDirectoryBlobs",
    "AsyncFileMaintenance",
    "AsyncFileReader",
    "AsyncFileStore",
    "AsyncFileUploads",
    "AsyncMemoryBlobs",
    "AsyncSqlChunkBlobs",
    "Blobs",
    "ChunkBlobs",
    "DirectoryBlobs",
    "FileBlob",
    "FileChunk",
    "FileChunkData",
    "FileInfo",
    "FileMaintenance",
    "FileReader",
    "FileSecret",
    "FileStore",
    "FileUpload",
    "FileUploads",
    "FsckProblem",
    "FsckReport",
    "GcReport",
    "Limits",
    "MemoryBlobs",
    "SignedDownload",
    "SqlChunkBlobs",
    "UploadGrant",
    "UploadPart",
    "check_key",
    "chunked_files",
    "chunked_files_async",
    "connect",
    "part_blob",
    "resolve_range",
    "sniff",
]
