"""The change-events layer: hooks and subscribers told of every committed write, and an
optional transactional outbox (async source, generated sync twin, and :func:`observed`)."""

from __future__ import annotations

import datetime as dt
from typing import Any, overload

from persisty.layers._dispatch import is_async
from persisty.layers.observed._async import AsyncObservedStore, AsyncSubscription
from persisty.layers.observed._changes import Change, HookFailure
from persisty.layers.observed._sync import ObservedStore, Subscription
from persisty.store import AsyncStore, Store

__all__ = [
    "AsyncObservedStore",
    "AsyncSubscription",
    "Change",
    "HookFailure",
    "ObservedStore",
    "Subscription",
    "events",
    "observed",
]


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
    if is_async(store, "observed"):
        return AsyncObservedStore(
            store, keep_failures=keep_failures, outbox=outbox, outbox_lease=outbox_lease
        )
    return ObservedStore(
        store, keep_failures=keep_failures, outbox=outbox, outbox_lease=outbox_lease
    )


events = observed
"""The same as :func:`observed`."""
