"""The in-memory backend: ``memory://``."""

from persisty.backends.memory._async import AsyncMemoryDatabase, AsyncMemoryStore
from persisty.backends.memory._sync import MemoryDatabase, MemoryStore
from persisty.backends.memory._table import MemoryTable

__all__ = [
    "AsyncMemoryDatabase",
    "AsyncMemoryStore",
    "MemoryDatabase",
    "MemoryStore",
    "MemoryTable",
]
