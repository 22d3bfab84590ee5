"""Sync-only helpers of the cache layer: a size-bounded LRU with a TTL, and single-flight
call sharing for threads (``Flights``) and asyncio tasks (``AsyncFlights``)."""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, Generic, TypeVar

from persisty.errors import Unavailable

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
