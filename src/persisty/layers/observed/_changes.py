"""Change events (sync-only helpers): what a hook receives, failure records, and the queues
behind ``listen()`` for the async and the sync events layer."""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import inspect
import logging
import queue
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


class AsyncHookCaller:
    """Calls a hook from the async layer: sync functions are called, coroutines awaited."""

    @staticmethod
    async def call(hook: Callable[[Change], Any], change: Change) -> None:
        result = hook(change)
        if inspect.isawaitable(result):
            await result


class HookCaller:
    """Calls a hook from the sync layer (an async hook there is an error)."""

    @staticmethod
    def call(hook: Callable[[Change], Any], change: Change) -> None:
        result = hook(change)
        if inspect.isawaitable(result):
            close = getattr(result, "close", None)
            if close is not None:
                close()
            raise TypeError("an async hook on a sync store: use the async store")


class AsyncChangeQueue:
    """A subscriber's buffer in the async layer (``asyncio.Queue``); when full, the oldest
    change is dropped and counted in ``dropped``."""

    def __init__(self, maxsize: int) -> None:
        self._queue: asyncio.Queue[Change | None] = asyncio.Queue(maxsize)
        self.dropped = 0

    def put(self, change: Change | None) -> None:
        while True:
            try:
                self._queue.put_nowait(change)
                return
            except asyncio.QueueFull:
                try:
                    self._queue.get_nowait()
                    self.dropped += 1
                except asyncio.QueueEmpty:  # pragma: no cover
                    pass

    async def get(self, timeout: float | None = None) -> Change | None:
        if timeout is None:
            return await self._queue.get()
        try:
            return await asyncio.wait_for(self._queue.get(), timeout)
        except TimeoutError:
            return None


class ChangeQueue:
    """A subscriber's buffer in the sync layer (``queue.Queue``, thread-safe)."""

    def __init__(self, maxsize: int) -> None:
        self._queue: queue.Queue[Change | None] = queue.Queue(maxsize)
        self.dropped = 0
        self._lock = threading.Lock()

    def put(self, change: Change | None) -> None:
        with self._lock:
            while True:
                try:
                    self._queue.put_nowait(change)
                    return
                except queue.Full:
                    try:
                        self._queue.get_nowait()
                        self.dropped += 1
                    except queue.Empty:  # pragma: no cover
                        pass

    def get(self, timeout: float | None = None) -> Change | None:
        try:
            return self._queue.get(timeout=timeout)
        except queue.Empty:
            return None
