"""The Store contract: sync (``Store``) and async (``AsyncStore``), with the base classes
backends and layers build on, and the values they pass around."""

from persisty.store._async import (
    AsyncDatabase,
    AsyncStore,
    AsyncStoreBase,
    AsyncWrappedStore,
)
from persisty.store._sync import Database, Store, StoreBase, WrappedStore
from persisty.store._types import (
    Clock,
    Edit,
    EditKind,
    EditResult,
    Explain,
    Insert,
    Key,
    Page,
    Remove,
    Replace,
    WriteOp,
)

__all__ = [
    "AsyncDatabase",
    "AsyncStore",
    "AsyncStoreBase",
    "AsyncWrappedStore",
    "Clock",
    "Database",
    "Edit",
    "EditKind",
    "EditResult",
    "Explain",
    "Insert",
    "Key",
    "Page",
    "Remove",
    "Replace",
    "Store",
    "StoreBase",
    "WrappedStore",
    "WriteOp",
]
