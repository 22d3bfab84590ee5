"""The cache layer's backends (async): in process (an LRU) and in Redis.

Edit this file; scripts/generate_sync.py writes its sync twin ``layers/cache/_backends_sync.py``.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from persisty.errors import ValidationError
from persisty.layers._primitives import LRU, AsyncRedisClient

Token = Any
"""What a cache hands out with a lookup and takes back with the fill: a fill is stored only
if no write was invalidated in between (so a read that raced a write is never cached)."""

MISSING = b""
"""How a key known to have no item is cached (items encode to JSON objects, never empty)."""


class AsyncCacheBackend:
    """Where a cached store keeps its entries: :class:`AsyncMemoryCache` (this process) or
    :class:`AsyncRedisCache` (shared by several processes).

    ``objects`` says whether it can keep Python objects (else it is given bytes).

    Example::

        class Mine(AsyncCacheBackend):   # implement get/put of items and queries,
            ...                          # invalidate, invalidate_all, close
        notes = cached(db.store(Note), cache=Mine())
    """

    objects = False

    def peek_item(self, key: str) -> Any:
        """The cached value of ``key`` if it can be had without I/O, else ``None``."""
        return None

    def peek_query(self, query: str) -> Any:
        """The cached result of ``query`` if it can be had without I/O, else ``None``."""
        return None

    async def get_items(self, keys: Sequence[str]) -> tuple[list[bytes | None], Token]:
        """The cached encoding of each key (``MISSING`` for a cached absence, ``None`` when not
        cached) and the token a later :meth:`put_items` must present."""
        raise NotImplementedError

    async def put_items(self, token: Token, entries: Mapping[str, bytes]) -> None:
        """Cache ``entries`` unless something was invalidated since ``token`` was issued."""
        raise NotImplementedError

    async def get_query(self, query: str) -> tuple[bytes | None, Token]:
        """The cached result of a search or count, and the token for :meth:`put_query`."""
        raise NotImplementedError

    async def put_query(self, token: Token, query: str, value: bytes) -> None:
        """Cache a search or count result unless anything was written since ``token``."""
        raise NotImplementedError

    async def invalidate(self, keys: Iterable[str]) -> None:
        """Forget the items with ``keys`` and every search and count result."""
        raise NotImplementedError

    async def invalidate_all(self) -> None:
        """Forget everything this store cached."""
        raise NotImplementedError

    async def close(self) -> None:
        """Release connections."""


class AsyncMemoryCache(AsyncCacheBackend):
    """An in-process LRU cache of at most ``max_items`` items and ``max_items`` search and
    count results, each kept ``ttl`` seconds (``None``: until evicted or invalidated).

    Example::

        notes = cached(db.store(Note), cache=AsyncMemoryCache(max_items=1000, ttl=5.0))
    """

    objects = True

    def __init__(self, max_items: int = 10_000, ttl: float | None = 30.0) -> None:
        self.items: LRU[Any] = LRU(max_items, ttl)
        self.queries: LRU[Any] = LRU(max_items, ttl)
        self.peek_item = self.items.get  # type: ignore[method-assign]  # the hot path
        self.generation = 0
        self._lock = threading.Lock()  # a fill and an invalidation never interleave

    def peek_item(self, key: str) -> Any:
        return self.items.get(key)

    def peek_query(self, query: str) -> Any:
        return self.queries.get((self.generation, query))

    async def get_items(self, keys: Sequence[str]) -> tuple[list[Any], Token]:
        token = self.generation
        return [self.items.get(k) for k in keys], token

    async def put_items(self, token: Token, entries: Mapping[str, Any]) -> None:
        with self._lock:
            if token == self.generation:
                for k, v in entries.items():
                    self.items.set(k, v)

    async def get_query(self, query: str) -> tuple[Any, Token]:
        token = self.generation
        return self.queries.get((token, query)), token

    async def put_query(self, token: Token, query: str, value: Any) -> None:
        with self._lock:
            if token == self.generation:
                self.queries.set((token, query), value)

    async def invalidate(self, keys: Iterable[str]) -> None:
        with self._lock:
            self.generation += 1
            for k in keys:
                self.items.pop(k)
            self.queries.clear()

    async def invalidate_all(self) -> None:
        with self._lock:
            self.generation += 1
            self.items.clear()
            self.queries.clear()


# Lua scripts: the cache's state for a store lives under one prefix P:
#   P:e  epoch (bumped when every item is forgotten)   P:g  generation (bumped by every write)
#   P:i:<epoch>:<key>  an item                           P:q:<generation>:<hash>  a result
_GET_ITEMS = """
local p = ARGV[1]
local e = redis.call('GET', p .. 'e') or '0'
local g = redis.call('GET', p .. 'g') or '0'
local out = {e .. ':' .. g}
for i = 2, #ARGV do
  out[#out + 1] = redis.call('GET', p .. 'i:' .. e .. ':' .. ARGV[i])
end
return out
"""
_PUT_ITEMS = """
local p = ARGV[1]
local e = redis.call('GET', p .. 'e') or '0'
local g = redis.call('GET', p .. 'g') or '0'
if e .. ':' .. g ~= ARGV[2] then return 0 end
for i = 4, #ARGV, 2 do
  redis.call('SET', p .. 'i:' .. e .. ':' .. ARGV[i], ARGV[i + 1], 'PX', ARGV[3])
end
return 1
"""
_GET_QUERY = """
local p = ARGV[1]
local g = redis.call('GET', p .. 'g') or '0'
return {g, redis.call('GET', p .. 'q:' .. g .. ':' .. ARGV[2])}
"""
_PUT_QUERY = """
local p = ARGV[1]
local g = redis.call('GET', p .. 'g') or '0'
if g ~= ARGV[2] then return 0 end
redis.call('SET', p .. 'q:' .. g .. ':' .. ARGV[4], ARGV[5], 'PX', ARGV[3])
return 1
"""
_INVALIDATE = """
local p = ARGV[1]
local e = redis.call('GET', p .. 'e') or '0'
redis.call('INCR', p .. 'g')
for i = 2, #ARGV do
  redis.call('DEL', p .. 'i:' .. e .. ':' .. ARGV[i])
end
return 1
"""
_INVALIDATE_ALL = """
local p = ARGV[1]
redis.call('INCR', p .. 'e')
redis.call('INCR', p .. 'g')
return 1
"""


def _digest(query: str) -> str:
    return hashlib.sha256(query.encode()).hexdigest()


class AsyncRedisCache(AsyncCacheBackend):
    """A cache in Redis, shared by every process that uses the same ``url`` and ``prefix``.

    Entries expire after ``ttl`` seconds (required: results of superseded generations are
    only removed by expiry). Uses Lua scripts on keys named under ``prefix``, so it needs a
    single Redis server (not a cluster).

    Example::

        notes = cached(db.store(Note), cache="redis://127.0.0.1:6379/0", ttl=timedelta(seconds=30))
    """

    def __init__(self, url: str, prefix: str, ttl: float) -> None:
        if not ttl or ttl <= 0:
            raise ValidationError("a Redis cache needs a positive ttl", field="ttl")
        self.client = AsyncRedisClient.connect(url)
        self.prefix = prefix
        self.ttl_ms = str(max(1, int(ttl * 1000)))
        self._get_items = self.client.register_script(_GET_ITEMS)
        self._put_items = self.client.register_script(_PUT_ITEMS)
        self._get_query = self.client.register_script(_GET_QUERY)
        self._put_query = self.client.register_script(_PUT_QUERY)
        self._invalidate = self.client.register_script(_INVALIDATE)
        self._invalidate_all = self.client.register_script(_INVALIDATE_ALL)

    async def get_items(self, keys: Sequence[str]) -> tuple[list[bytes | None], Token]:
        out = await self._get_items(args=[self.prefix, *keys])
        token = out[0]
        values = list(out[1:])
        values.extend([None] * (len(keys) - len(values)))  # Lua drops trailing nils
        return values, token

    async def put_items(self, token: Token, entries: Mapping[str, bytes]) -> None:
        args: list[Any] = [self.prefix, token, self.ttl_ms]
        for k, v in entries.items():
            args += [k, v]
        await self._put_items(args=args)

    async def get_query(self, query: str) -> tuple[bytes | None, Token]:
        out = await self._get_query(args=[self.prefix, _digest(query)])
        return (out[1] if len(out) > 1 else None), out[0]

    async def put_query(self, token: Token, query: str, value: bytes) -> None:
        await self._put_query(args=[self.prefix, token, self.ttl_ms, _digest(query), value])

    async def invalidate(self, keys: Iterable[str]) -> None:
        await self._invalidate(args=[self.prefix, *keys])

    async def invalidate_all(self) -> None:
        await self._invalidate_all(args=[self.prefix])

    async def close(self) -> None:
        await AsyncRedisClient.close(self.client)
