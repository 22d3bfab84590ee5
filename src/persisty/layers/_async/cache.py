"""The cache layer (async): a read-through cache of items, searches and counts.

The sync twin ``persisty/layers/_sync/cache.py`` is generated from this file by
``scripts/generate_sync.py``; edit this file, never the twin.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import msgspec

from persisty.errors import PersistyError, ValidationError
from persisty.layers._lru import LRU, AsyncFlights, AsyncRedisClient
from persisty.query import Filter, sort_spec, validate_filter
from persisty.store import AsyncStore, AsyncWrappedStore, Edit, EditKind, EditResult, Page
from persisty.store._async import OrderArg

T = TypeVar("T")

Token = Any
"""What a cache hands out with a lookup and takes back with the fill: a fill is stored only
if no write was invalidated in between (so a read that raced a write is never cached)."""

MISSING = b""
"""How a key known to have no item is cached (items encode to JSON objects, never empty)."""


@dataclass(slots=True)
class CacheStats:
    """Counters of one cached store: ``hits`` and ``misses`` of lookups (items, searches and
    counts), ``loads`` (backend reads the misses caused; fewer than ``misses`` when
    concurrent misses shared one read) and ``invalidations`` (writes through the layer).

    Example::

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


class AsyncCacheBackend:
    """Where a cached store keeps its entries: :class:`AsyncMemoryCache` (this process) or
    :class:`AsyncRedisCache` (shared by several processes)."""

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
    """An in-process LRU cache bounded to ``max_items`` entries, each kept ``ttl`` seconds.

    Example::

        notes = cached(db.store(Note), cache=AsyncMemoryCache(max_items=1000, ttl=5.0))
    """

    def __init__(self, max_items: int = 10_000, ttl: float | None = 30.0) -> None:
        self.lru: LRU[bytes] = LRU(max_items, ttl)
        self.generation = 0
        self._lock = threading.Lock()  # a fill and an invalidation never interleave

    async def get_items(self, keys: Sequence[str]) -> tuple[list[bytes | None], Token]:
        token = self.generation
        return [self.lru.get(("i", k)) for k in keys], token

    async def put_items(self, token: Token, entries: Mapping[str, bytes]) -> None:
        with self._lock:
            if token == self.generation:
                for k, v in entries.items():
                    self.lru.set(("i", k), v)

    async def get_query(self, query: str) -> tuple[bytes | None, Token]:
        token = self.generation
        return self.lru.get(("q", token, query)), token

    async def put_query(self, token: Token, query: str, value: bytes) -> None:
        with self._lock:
            if token == self.generation:
                self.lru.set(("q", token, query), value)

    async def invalidate(self, keys: Iterable[str]) -> None:
        with self._lock:
            self.generation += 1
            for k in keys:
                self.lru.pop(("i", k))

    async def invalidate_all(self) -> None:
        with self._lock:
            self.generation += 1
            self.lru.clear()


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


def _digest(query: str) -> str:
    return hashlib.sha256(query.encode()).hexdigest()


class AsyncCachedStore(AsyncWrappedStore[T]):
    """A read-through cache over ``inner``: ``read``, ``read_batch``, ``search`` and ``count``
    answer from the cache when they can; every write through this store invalidates what it
    may have changed (``update_all``/``delete_all`` forget every cached item). Concurrent
    misses for the same entry cause one backend read. Writes made elsewhere are seen after at
    most ``ttl``. Use :func:`persisty.layers.cached` to build one.

    Example::

        notes = cached(db.store(Note), ttl=timedelta(seconds=30), max_items=10_000)
        await notes.read(key)      # backend read, then cached
        await notes.read(key)      # from the cache
        notes.stats.hits           # 1
    """

    def __init__(self, inner: AsyncStore[T], cache: AsyncCacheBackend) -> None:
        super().__init__(inner)
        self.cache = cache
        self.stats = CacheStats()
        self._flights = AsyncFlights()
        self._page = msgspec.json.Decoder(tuple[list[self.meta.cls], str | None])  # type: ignore[name-defined]

    # ---- reads --------------------------------------------------------------------------

    def _decode(self, data: bytes) -> T | None:
        if data == MISSING:
            return None
        item: T = self.meta.decode(data)
        return item

    def _canon(self, key: str) -> str:
        """The one spelling of ``key`` (a bad key is a ValidationError, never an entry)."""
        return self.meta.key_string(self.meta.parse_key(key))

    async def read(self, key: str) -> T | None:
        key = self._canon(key)
        (found,), token = await self.cache.get_items([key])
        if found is not None:
            self.stats.hits += 1
            return self._decode(found)
        self.stats.misses += 1

        async def load() -> bytes:
            (again,), fresh = await self.cache.get_items([key])  # a flight that just ended
            if again is not None:  # (after our lookup) may have filled it
                return again
            self.stats.loads += 1
            item = await self.inner.read(key)
            data = MISSING if item is None else self.meta.encode(item)
            await self.cache.put_items(fresh, {key: data})
            return data

        return self._decode(await self._flights.run(("i", token, key), load))

    async def read_batch(self, keys: Sequence[str]) -> list[T | None]:
        if isinstance(keys, str):
            raise ValidationError("read_batch takes a list of keys")
        keys = [self._canon(k) for k in keys]
        if not keys:
            return []
        found, token = await self.cache.get_items(keys)
        missing = list(dict.fromkeys(k for k, v in zip(keys, found, strict=True) if v is None))
        self.stats.hits += len(keys) - len(missing)
        self.stats.misses += len(missing)
        if missing:

            async def load() -> dict[str, bytes]:
                again, fresh = await self.cache.get_items(missing)
                data = {k: v for k, v in zip(missing, again, strict=True) if v is not None}
                still = [k for k in missing if k not in data]
                if still:
                    self.stats.loads += 1
                    items = await self.inner.read_batch(still)
                    loaded = {k: MISSING if i is None else self.meta.encode(i)
                              for k, i in zip(still, items, strict=True)}
                    await self.cache.put_items(fresh, loaded)
                    data.update(loaded)
                return data

            loaded = await self._flights.run(("b", token, tuple(missing)), load)
            found = [loaded[k] if v is None else v for k, v in zip(keys, found, strict=True)]
        return [None if v is None else self._decode(v) for v in found]

    def _query_key(self, kind: str, filter: Filter | None, order: OrderArg = None,
                   limit: int | None = None, page_key: str | None = None) -> str:
        f = validate_filter(filter, self.meta)
        spec = sort_spec(self.meta, order) if kind == "s" else ()
        return repr((kind, repr(f), spec, limit, page_key))

    async def search(self, filter: Filter | None = None, order: OrderArg = None,
                     limit: int | None = None, page_key: str | None = None) -> Page[T]:
        query = self._query_key("s", filter, order, limit, page_key)
        found, token = await self.cache.get_query(query)
        if found is not None:
            self.stats.hits += 1
        else:
            self.stats.misses += 1

            async def load() -> bytes:
                again, fresh = await self.cache.get_query(query)
                if again is not None:
                    return again
                self.stats.loads += 1
                page = await self.inner.search(filter, order, limit, page_key)
                data = msgspec.json.encode(
                    ([msgspec.Raw(self.meta.encode(i)) for i in page.items], page.next_page_key))
                await self.cache.put_query(fresh, query, data)
                return data

            found = await self._flights.run(("q", token, query), load)
        items, next_key = self._page.decode(found)
        return Page(items, next_key)

    async def count(self, filter: Filter | None = None) -> int:
        query = self._query_key("c", filter)
        found, token = await self.cache.get_query(query)
        if found is not None:
            self.stats.hits += 1
        else:
            self.stats.misses += 1

            async def load() -> bytes:
                again, fresh = await self.cache.get_query(query)
                if again is not None:
                    return again
                self.stats.loads += 1
                data = str(await self.inner.count(filter)).encode()
                await self.cache.put_query(fresh, query, data)
                return data

            found = await self._flights.run(("q", token, query), load)
        return int(found)

    # ---- writes -------------------------------------------------------------------------

    def _key_or_none(self, item: Any) -> str | None:
        try:
            if not isinstance(item, self.meta.cls):
                item = self.meta.from_builtins(item)
            return self.meta.key_of(item)
        except (PersistyError, TypeError, AttributeError):
            return None

    def _canon_or_none(self, key: Any) -> str | None:
        try:
            return self._canon(key)
        except (PersistyError, TypeError, AttributeError):
            return None

    async def _written(self, keys: Iterable[str | None]) -> None:
        self.stats.invalidations += 1
        await self.cache.invalidate([k for k in dict.fromkeys(keys) if k is not None])

    async def create(self, item: T) -> T:
        keys = [self._key_or_none(item)]
        try:
            new = await self.inner.create(item)
            keys.append(self.meta.key_of(new))
            return new
        finally:
            await self._written(keys)

    async def update(self, item: T, *, if_match: str | None = None,
                     precondition: Filter | None = None) -> T:
        try:
            return await self.inner.update(item, if_match=if_match, precondition=precondition)
        finally:
            await self._written([self._key_or_none(item)])

    async def patch(self, key: str, changes: Mapping[str, Any], *, if_match: str | None = None,
                    precondition: Filter | None = None) -> T:
        try:
            return await self.inner.patch(key, changes, if_match=if_match,
                                          precondition=precondition)
        finally:
            await self._written([self._canon_or_none(key)])

    async def delete(self, key: str, *, if_match: str | None = None,
                     precondition: Filter | None = None) -> None:
        try:
            await self.inner.delete(key, if_match=if_match, precondition=precondition)
        finally:
            await self._written([self._canon_or_none(key)])

    async def edit_batch(self, edits: Sequence[Edit], atomic: bool = True) -> list[EditResult[T]]:
        edits = list(edits)
        keys: list[str | None] = []
        for e in edits:
            if not isinstance(e, Edit):
                continue
            if e.kind in (EditKind.CREATE, EditKind.UPDATE):
                keys.append(self._key_or_none(e.item))
            else:
                keys.append(self._canon_or_none(e.key))
        try:
            results = await self.inner.edit_batch(edits, atomic)
            keys.extend(self.meta.key_of(r.item) for r in results if r.ok and r.item is not None)
            return results
        finally:
            await self._written(keys)

    async def update_all(self, filter: Filter | None, changes: Mapping[str, Any]) -> int:
        try:
            return await self.inner.update_all(filter, changes)
        finally:
            self.stats.invalidations += 1
            await self.cache.invalidate_all()

    async def delete_all(self, filter: Filter | None) -> int:
        try:
            return await self.inner.delete_all(filter)
        finally:
            self.stats.invalidations += 1
            await self.cache.invalidate_all()

    async def clear(self) -> None:
        """Forget everything this store cached (e.g. after writes made around the layer)."""
        await self.cache.invalidate_all()

    async def close(self) -> None:
        """Close the cache's connections (a Redis cache); the inner store stays open."""
        await self.cache.close()
