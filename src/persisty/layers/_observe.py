"""``observed(store)``: the change-events layer for a sync or an async store (sync-only entry
point; the layers are in ``_async/events.py`` and its generated twin)."""

from __future__ import annotations

import datetime as dt
from typing import Any, overload

from persisty.layers._async.events import AsyncObservedStore
from persisty.layers._sync.events import ObservedStore
from persisty.store import AsyncStore, Store


@overload
def observed(
    store: AsyncStore[Any],
    *,
    keep_failures: int = 100,
    outbox: bool = False,
    outbox_lease: dt.timedelta = ...,
) -> AsyncObservedStore[Any]: ...


@overload
def observed(
    store: Store[Any],
    *,
    keep_failures: int = 100,
    outbox: bool = False,
    outbox_lease: dt.timedelta = ...,
) -> ObservedStore[Any]: ...


def observed(
    store: Any,
    *,
    keep_failures: int = 100,
    outbox: bool = False,
    outbox_lease: dt.timedelta = dt.timedelta(seconds=30),
) -> Any:
    """Wrap ``store`` (sync or async) so every committed write is reported to hooks
    (``on_create``/``on_update``/``on_delete``/``on_change``) and ``listen()`` subscribers.
    With ``outbox=True`` (SQL stores) changes are also kept in an outbox table written in the
    same transaction, and ``deliver_pending()`` delivers what a crashed process left behind.

    Example::

        notes = observed(db.store(Note))
        notes.on_delete(lambda change: print("gone:", change.old))
    """
    if isinstance(store, AsyncStore):
        return AsyncObservedStore(
            store, keep_failures=keep_failures, outbox=outbox, outbox_lease=outbox_lease
        )
    if isinstance(store, Store):
        return ObservedStore(
            store, keep_failures=keep_failures, outbox=outbox, outbox_lease=outbox_lease
        )
    raise TypeError(f"observed() wraps a Store, not {type(store).__name__}")


events = observed
"""The same as :func:`observed`."""
