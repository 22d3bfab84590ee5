"""What the async and the sync layers share as one class each: the pure ones (``CacheStats``,
``Outcome``, the LRU) and the hand-written sync/async pairs (single flights, Redis clients,
hook callers, change queues), so a generated sync layer names the same classes and only
code that awaits lives in ``_async`` files."""

from __future__ import annotations

import asyncio
import inspect
import math
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from persisty.errors import (
    Conflict,
    Forbidden,
    IntegrityError,
    NotFound,
    PersistyError,
    PreconditionFailed,
    Unauthorized,
    Unavailable,
    ValidationError,
)
from persisty.store import Edit, EditKind, EditResult

if TYPE_CHECKING:  # only annotations: the events layer's package imports this module
    from persisty.layers.observed._changes import Change

V = TypeVar("V")


class LRU(Generic[V]):
    """A thread-safe mapping that keeps at most ``max_items`` entries (least recently used
    go first) and forgets an entry ``ttl`` seconds after it was stored (``None``: never).

    Example::

        lru = LRU(max_items=2, ttl=30.0)
        lru.set("a", b"1")
        lru.get("a")        # b"1"
    """

    def __init__(self, max_items: int, ttl: float | None) -> None:
        if not isinstance(max_items, int) or max_items < 1:
            raise ValueError("max_items must be a positive integer")
        self.max_items = max_items
        self.ttl = ttl
        self._data: OrderedDict[Hashable, tuple[V, float]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> V | None:
        """The value for ``key`` if present and fresh, else ``None``."""
        # lock-free: each OrderedDict operation is atomic, and losing a race with an
        # eviction only means a miss
        found = self._data.get(key)
        if found is None:
            return None
        if found[1] <= time.monotonic():
            with self._lock:
                if self._data.get(key) is found:
                    del self._data[key]
            return None
        try:  # noqa: SIM105
            self._data.move_to_end(key)
        except KeyError:
            pass
        return found[0]

    def set(self, key: Hashable, value: V) -> None:
        """Store ``value`` under ``key``, evicting the least recently used beyond the bound."""
        expires = time.monotonic() + self.ttl if self.ttl is not None else math.inf
        with self._lock:
            self._data[key] = (value, expires)
            self._data.move_to_end(key)
            while len(self._data) > self.max_items:
                self._data.popitem(last=False)

    def pop(self, key: Hashable) -> None:
        """Forget ``key``."""
        with self._lock:
            self._data.pop(key, None)

    def clear(self) -> None:
        """Forget everything."""
        with self._lock:
            self._data.clear()

    def __len__(self) -> int:
        return len(self._data)


class _Call:
    __slots__ = ("done", "error", "result")

    def __init__(self) -> None:
        self.done = threading.Lock()  # held by the leader until the result is there
        self.done.acquire()
        self.result: Any = None
        self.error: BaseException | None = None


class Flights:
    """Single flight for threads: concurrent ``run(key, fn)`` calls with the same key while
    one is running share its result; ``fn`` runs once.

    Example::

        flights = Flights()
        value = flights.run(("item", "k1"), lambda: backend.read("k1"))
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: dict[Hashable, _Call] = {}
        self.shared = 0
        """How many calls were answered by another call's result."""

    def run(self, key: Hashable, fn: Callable[[], V]) -> V:
        """``fn()``, or the result of the call already running for ``key``."""
        with self._lock:
            call = self._calls.get(key)
            leader = call is None
            if call is None:
                call = self._calls[key] = _Call()
            else:
                self.shared += 1
        if not leader:
            with call.done:  # wait for the leader
                pass
            if call.error is not None:
                raise call.error
            result: V = call.result
            return result
        try:
            call.result = fn()
        except BaseException as e:
            call.error = e
            raise
        finally:
            with self._lock:
                if self._calls.get(key) is call:
                    del self._calls[key]
            call.done.release()
        value: V = call.result
        return value


class AsyncFlights:
    """Single flight for asyncio tasks: concurrent ``await run(key, fn)`` calls with the same
    key while one is running share its result; ``fn()`` is awaited once.

    Example::

        flights = AsyncFlights()
        value = await flights.run(("item", "k1"), lambda: backend.read("k1"))
    """

    def __init__(self) -> None:
        self._calls: dict[Hashable, asyncio.Future[Any]] = {}
        self.shared = 0
        """How many calls were answered by another call's result."""

    async def run(self, key: Hashable, fn: Callable[[], Awaitable[V]]) -> V:
        """``await fn()``, or the result of the call already running for ``key``."""
        while True:
            future = self._calls.get(key)
            if future is None:
                break
            self.shared += 1
            try:
                result: V = await asyncio.shield(future)
                return result
            except asyncio.CancelledError:
                if future.cancelled():  # the leader was cancelled, not us: try again
                    self.shared -= 1
                    continue
                raise
        future = asyncio.get_running_loop().create_future()
        self._calls[key] = future
        try:
            value = await fn()
        except BaseException as e:
            if isinstance(e, asyncio.CancelledError):
                future.cancel()
            else:
                future.set_exception(e)
                future.exception()  # retrieved: no "never retrieved" warning without waiters
            raise
        else:
            future.set_result(value)
            return value
        finally:
            if self._calls.get(key) is future:
                del self._calls[key]


class RedisClient:
    """Opens and closes the sync Redis client of a Redis cache."""

    @staticmethod
    def connect(url: str) -> Any:
        """A ``redis.Redis`` for ``url``."""
        try:
            import redis
        except ImportError as e:  # pragma: no cover - depends on the installation
            raise Unavailable("a Redis cache needs persisty[redis]") from e
        return redis.Redis.from_url(url)

    @staticmethod
    def close(client: Any) -> None:
        """Close ``client``."""
        client.close()


class AsyncRedisClient:
    """Opens and closes the async Redis client of a Redis cache."""

    @staticmethod
    def connect(url: str) -> Any:
        """A ``redis.asyncio.Redis`` for ``url``."""
        try:
            from redis.asyncio import Redis
        except ImportError as e:  # pragma: no cover - depends on the installation
            raise Unavailable("a Redis cache needs persisty[redis]") from e
        return Redis.from_url(url)

    @staticmethod
    async def close(client: Any) -> None:
        """Close ``client``."""
        await client.aclose()


@dataclass(slots=True)
class CacheStats:
    """Counters of one cached store: ``hits`` and ``misses`` of lookups (items, searches and
    counts), ``loads`` (backend reads the misses caused; fewer than ``misses`` when
    concurrent misses shared one read) and ``invalidations`` (writes through the layer).

    Example::

        notes = cached(db.store(Note))
        notes.stats.hits, notes.stats.misses, notes.stats.hit_ratio
    """

    hits: int = 0
    misses: int = 0
    loads: int = 0
    invalidations: int = 0

    @property
    def hit_ratio(self) -> float:
        """``hits / (hits + misses)``, 0.0 before the first lookup."""
        total = self.hits + self.misses
        return self.hits / total if total else 0.0


_ERRORS: dict[str, type[PersistyError]] = {
    c.code: c
    for c in (
        Conflict,
        Forbidden,
        IntegrityError,
        NotFound,
        PreconditionFailed,
        Unauthorized,
        Unavailable,
        ValidationError,
    )
}


@dataclass(slots=True)
class Outcome:
    """One edit's result at the storage level: ``item`` is the stored item after the edit,
    ``old`` the stored item it replaced or deleted (``None`` for a create)."""

    edit: Edit
    ok: bool
    code: str | None = None
    item: Any = None
    old: Any = None
    message: str | None = None
    field: str | None = None

    def error(self) -> PersistyError:
        """The failure as an exception of the class its code names."""
        cls = _ERRORS.get(self.code or "", PersistyError)
        err = cls(self.message or self.code or "error", field=self.field)
        if cls is PersistyError and self.code:
            err.code = self.code
        return err

    def result(self, view: Callable[[Any], Any]) -> EditResult[Any]:
        """The caller's :class:`EditResult` (items shown through ``view``)."""
        if not self.ok:
            return EditResult(self.edit, False, self.code, None, self.message, self.field)
        shown = self.old if self.edit.kind == EditKind.DELETE else self.item
        return EditResult(self.edit, True, None, None if shown is None else view(shown))


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


def _put_dropping_oldest(
    into: asyncio.Queue[Change | None] | queue.Queue[Change | None],
    change: Change | None,
    full: type[Exception],
    empty: type[Exception],
) -> int:
    """Puts ``change``, dropping the oldest while the queue is full (a slow subscriber loses
    old changes, never blocks the writer); returns how many were dropped."""
    dropped = 0
    while True:
        try:
            into.put_nowait(change)
            return dropped
        except full:
            try:
                into.get_nowait()
                dropped += 1
            except empty:  # pragma: no cover
                pass


class AsyncChangeQueue:
    """A subscriber's buffer in the async layer (``asyncio.Queue``); when full, the oldest
    change is dropped and counted in ``dropped``."""

    def __init__(self, maxsize: int) -> None:
        self._queue: asyncio.Queue[Change | None] = asyncio.Queue(maxsize)
        self.dropped = 0

    def put(self, change: Change | None) -> None:
        self.dropped += _put_dropping_oldest(
            self._queue, change, asyncio.QueueFull, asyncio.QueueEmpty
        )

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
            self.dropped += _put_dropping_oldest(self._queue, change, queue.Full, queue.Empty)

    def get(self, timeout: float | None = None) -> Change | None:
        try:
            return self._queue.get(timeout=timeout)
        except queue.Empty:
            return None
