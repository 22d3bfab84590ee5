"""The Store contract: sync (``Store``) and async (``AsyncStore``), with the base classes
backends and layers build on, and the values they pass around."""

from persisty.store._async import (
    AsyncDatabase,
    AsyncStore,
    AsyncStoreBase,
    AsyncWrappedStore,
)
from persisty.store._async import put_through as put_through_async
from persisty.store._async import resolve_puts as resolve_puts_async
from persisty.store._prepare import has_increments, patched_attrs, resolve_increments
from persisty.store._sync import (
    Database,
    Store,
    StoreBase,
    WrappedStore,
    put_through,
    resolve_puts,
)
from persisty.store._types import (
    Clock,
    Edit,
    EditKind,
    EditResult,
    Explain,
    Increment,
    Insert,
    Key,
    Page,
    Remove,
    Replace,
    WriteOp,
    clock_of,
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
    "Increment",
    "Insert",
    "Key",
    "Page",
    "Remove",
    "Replace",
    "Store",
    "StoreBase",
    "WrappedStore",
    "WriteOp",
    "clock_of",
    "has_increments",
    "patched_attrs",
    "put_through",
    "put_through_async",
    "resolve_increments",
    "resolve_puts",
    "resolve_puts_async",
]
