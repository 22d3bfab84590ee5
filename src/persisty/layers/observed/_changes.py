"""Change events (sync-only helpers): what a hook receives, failure records, and the queues
behind ``listen()`` for the async and the sync events layer."""

from __future__ import annotations

import collections
import datetime as dt
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("persisty.events")

KINDS = ("create", "update", "delete")


@dataclass(frozen=True, slots=True)
class Change:
    """One committed write: ``kind`` is ``create``, ``update`` (also patches) or ``delete``;
    ``old`` is the item before (``None`` for a create), ``new`` the item after (``None`` for
    a delete).

    Example::

        notes = observed(db.store(Note))

        @notes.on_update
        def audit(change: Change) -> None:
            print(change.key, change.old.title, "->", change.new.title)
    """

    kind: str
    store: str
    key: str
    old: Any
    new: Any
    at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))

    @property
    def item(self) -> Any:
        """The item as it is now (``new``), or as it was for a delete (``old``)."""
        return self.old if self.new is None else self.new


@dataclass(frozen=True, slots=True)
class HookFailure:
    """A hook that raised: the write it was told about stays committed.

    Example::

        notes = observed(db.store(Note))
        for failure in notes.failures:
            print(failure.change.kind, failure.change.key, repr(failure.error))
    """

    change: Change
    hook: Callable[..., Any]
    error: BaseException


class Failures:
    """The most recent hook failures (bounded), also logged on ``persisty.events``.

    Example::

        notes = observed(db.store(Note))
        if notes.failures.total:
            last = list(notes.failures)[-1]
            notes.failures.clear()
    """

    def __init__(self, keep: int = 100) -> None:
        self._items: collections.deque[HookFailure] = collections.deque(maxlen=keep)
        self.total = 0
        self._lock = threading.Lock()

    def add(self, failure: HookFailure) -> None:
        """Record (and log) one failure."""
        with self._lock:
            self._items.append(failure)
            self.total += 1
        log.error(
            "persisty: %s hook %r failed for %s %r: %r",
            failure.change.kind,
            getattr(failure.hook, "__qualname__", failure.hook),
            failure.change.store,
            failure.change.key,
            failure.error,
            exc_info=failure.error,
        )

    def __iter__(self) -> Any:
        with self._lock:
            return iter(list(self._items))

    def __len__(self) -> int:
        return len(self._items)

    def clear(self) -> None:
        """Forget the recorded failures."""
        with self._lock:
            self._items.clear()
