"""The Store contract: sync (``Store``) and async (``AsyncStore``), with the base classes
backends and layers build on, and the values and helpers they pass around.

A backend needs nothing from persisty's private modules: the ``prepare_*`` functions make
the item a write stores (validation, generated values), ``check_changes`` validates a
patch, ``patch_keys`` / ``delete_keys`` apply a change to many keys in batches, and
``OutboxSource`` is what a store that keeps a transactional outbox offers the events layer.
"""

from persisty.store._async import (
    MAX_RETRIES,
    AsyncDatabase,
    AsyncOutbox,
    AsyncOutboxSource,
    AsyncSqlAccess,
    AsyncStore,
    AsyncStoreBase,
    AsyncWrappedStore,
    OrderArg,
)
from persisty.store._async import delete_keys as delete_keys_async
from persisty.store._async import patch_keys as patch_keys_async
from persisty.store._async import put_through as put_through_async
from persisty.store._async import resolve_puts as resolve_puts_async
from persisty.store._checks import CHECK_FAILURES, Plain, ValueChecks, gc_paused, value_checks
from persisty.store._prepare import (
    as_item,
    check_changes,
    has_increments,
    patched_attrs,
    prepare_create,
    prepare_creates,
    prepare_patch,
    prepare_update,
    resolve_increments,
)
from persisty.store._sync import (
    Database,
    Outbox,
    OutboxSource,
    SqlAccess,
    Store,
    StoreBase,
    WrappedStore,
    delete_keys,
    patch_keys,
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
    Plan,
    Remove,
    Replace,
    WriteOp,
    clock_of,
)

__all__ = [
    "CHECK_FAILURES",
    "MAX_RETRIES",
    "AsyncDatabase",
    "AsyncOutbox",
    "AsyncOutboxSource",
    "AsyncSqlAccess",
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
    "OrderArg",
    "Outbox",
    "OutboxSource",
    "Page",
    "Plain",
    "Plan",
    "Remove",
    "Replace",
    "SqlAccess",
    "Store",
    "StoreBase",
    "ValueChecks",
    "WrappedStore",
    "WriteOp",
    "as_item",
    "check_changes",
    "clock_of",
    "delete_keys",
    "delete_keys_async",
    "gc_paused",
    "has_increments",
    "patch_keys",
    "patch_keys_async",
    "patched_attrs",
    "prepare_create",
    "prepare_creates",
    "prepare_patch",
    "prepare_update",
    "put_through",
    "put_through_async",
    "resolve_increments",
    "resolve_puts",
    "resolve_puts_async",
    "value_checks",
]
