"""The directory backend: ``file:///path`` keeps one JSON document per item."""

from persisty.backends.directory._async import AsyncDirectoryDatabase, AsyncDirectoryStore
from persisty.backends.directory._files import DirectoryTable
from persisty.backends.directory._sync import DirectoryDatabase, DirectoryStore

__all__ = [
    "AsyncDirectoryDatabase",
    "AsyncDirectoryStore",
    "DirectoryDatabase",
    "DirectoryStore",
    "DirectoryTable",
]
