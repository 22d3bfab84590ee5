"""The cache layer (async): a read-through cache of items, searches and counts.

The sync twin ``persisty/layers/cache/_sync.py`` is generated from this file by
``scripts/generate_sync.py``; edit this file, never the twin.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterable, Mapping, Sequence
from time import monotonic as _monotonic
from typing import Any, TypeVar

import msgspec

from persisty.errors import PersistyError, ValidationError
from persisty.layers._primitives import LRU, AsyncFlights, AsyncRedisClient, CacheStats
from persisty.query import Filter, sort_spec, validate_filter
from persisty.store import (
    AsyncStore,
    AsyncWrappedStore,
    Edit,
    EditKind,
    EditResult,
    OrderArg,
    Page,
    clock_of,
)

T = TypeVar("T")

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

    The in-process cache hands out the cached objects themselves (that is what makes a hit
    cheap): treat items read through it as read-only, or pass ``copies=True`` to get a
    fresh copy on every read. The Redis cache always decodes a fresh copy.

    Example::

        notes = cached(db.store(Note), ttl=timedelta(seconds=30), max_items=10_000)
        await notes.read(key)      # backend read, then cached
        await notes.read(key)      # from the cache
        notes.stats.hits           # 1
    """

    def __init__(
        self, inner: AsyncStore[T], cache: AsyncCacheBackend, *, copies: bool = False
    ) -> None:
        super().__init__(inner)
        self.cache = cache
        self.stats = CacheStats()
        self._flights = AsyncFlights()
        self._objects = cache.objects and not copies
        self._peek = cache.peek_item
        memory = isinstance(cache, AsyncMemoryCache)
        self._hot = cache.items._data if memory else None  # type: ignore[attr-defined]
        # without a ttl every entry is fresh: the hot path then skips reading the clock
        self._forever = memory and cache.items.ttl is None  # type: ignore[attr-defined]
        self._page = msgspec.json.Decoder(tuple[list[self.meta.cls], str | None])  # type: ignore[name-defined]
        # items that expire (Attr(expires=True)): a cached item is checked against the
        # backend's clock on every hit, and pages and counts are not cached (they would
        # change as items expire, with no write to invalidate them)
        self._expires = self.meta.expires
        self._clock = clock_of(inner)
        if self._expires is not None:
            self._hot = None

    # ---- values as cached -----------------------------------------------------------------

    def _pack(self, item: T | None) -> Any:
        if item is None:
            return MISSING
        return item if self._objects else self.meta.encode(item)

    def _unpack(self, value: Any) -> T | None:
        if self._objects:
            item = None if value is MISSING else value
        elif value == MISSING:
            return None
        else:
            item = self.meta.decode(value)
        if self._expires is not None and item is not None:
            at = getattr(item, self._expires)
            if at is not None and at <= self._clock():
                return None
        return item

    def _pack_page(self, page: Page[T]) -> Any:
        if self._objects:
            return (page.items, page.next_page_key)
        return msgspec.json.encode(
            ([msgspec.Raw(self.meta.encode(i)) for i in page.items], page.next_page_key)
        )

    def _unpack_page(self, value: Any) -> Page[T]:
        items, next_key = value if self._objects else self._page.decode(value)
        return Page(list(items), next_key)

    # ---- reads --------------------------------------------------------------------------

    def _canon(self, key: str) -> str:
        """The one spelling of ``key`` (a bad key is a ValidationError, never an entry)."""
        return self.meta.key_string(self.meta.parse_key(key))

    async def read(self, key: str) -> T | None:
        # entries are under canonical keys only, so the key as given can be tried at once;
        # the in-process LRU is looked up inline (this is the path a cache is for)
        hot = self._hot
        if hot is not None and type(key) is str:
            entry = hot.get(key)
            if entry is not None and (self._forever or entry[1] > _monotonic()):
                try:  # noqa: SIM105
                    hot.move_to_end(key)
                except KeyError:  # evicted meanwhile: still a valid answer
                    pass
                self.stats.hits += 1
                value = entry[0]
                if self._objects:
                    return None if value is MISSING else value
                return self._unpack(value)
        return await self._read_through(key)

    async def _read_through(self, key: str) -> T | None:
        # apart from read(): its closure would make every read pay for cell variables
        key = self._canon(key)
        (found,), token = await self.cache.get_items([key])
        if found is not None:
            self.stats.hits += 1
            return self._unpack(found)
        self.stats.misses += 1

        async def load() -> Any:
            (again,), fresh = await self.cache.get_items([key])  # a flight that just ended
            if again is not None:  # (after our lookup) may have filled it
                return again
            self.stats.loads += 1
            data = self._pack(await self.inner.read(key))
            await self.cache.put_items(fresh, {key: data})
            return data

        return self._unpack(await self._flights.run(("i", token, key), load))

    async def read_batch(self, keys: Sequence[str]) -> list[T | None]:
        if isinstance(keys, str):
            raise ValidationError("read_batch takes a list of keys")
        peek = self._peek
        found: list[Any] = [peek(k) if type(k) is str else None for k in keys]
        if None not in found:
            self.stats.hits += len(found)
            return [self._unpack(v) for v in found]
        keys = [self._canon(k) for k in keys]
        found, token = await self.cache.get_items(keys)
        missing = list(dict.fromkeys(k for k, v in zip(keys, found, strict=True) if v is None))
        self.stats.hits += len(keys) - len(missing)
        self.stats.misses += len(missing)
        if missing:

            async def load() -> dict[str, Any]:
                again, fresh = await self.cache.get_items(missing)
                data = {k: v for k, v in zip(missing, again, strict=True) if v is not None}
                still = [k for k in missing if k not in data]
                if still:
                    self.stats.loads += 1
                    items = await self.inner.read_batch(still)
                    loaded = {k: self._pack(i) for k, i in zip(still, items, strict=True)}
                    await self.cache.put_items(fresh, loaded)
                    data.update(loaded)
                return data

            loaded = await self._flights.run(("b", token, tuple(missing)), load)
            found = [loaded[k] if v is None else v for k, v in zip(keys, found, strict=True)]
        return [self._unpack(v) for v in found]

    def _query_key(
        self,
        kind: str,
        filter: Filter | None,
        order: OrderArg = None,
        limit: int | None = None,
        page_key: str | None = None,
    ) -> str:
        f = validate_filter(filter, self.meta)
        spec = sort_spec(self.meta, order) if kind == "s" else ()
        return repr((kind, repr(f), spec, limit, page_key))

    async def _query(self, query: str, fetch: Any) -> Any:
        found = self.cache.peek_query(query)
        if found is not None:
            self.stats.hits += 1
            return found
        found, token = await self.cache.get_query(query)
        if found is not None:
            self.stats.hits += 1
            return found
        self.stats.misses += 1

        async def load() -> Any:
            again, fresh = await self.cache.get_query(query)
            if again is not None:
                return again
            self.stats.loads += 1
            data = await fetch()
            await self.cache.put_query(fresh, query, data)
            return data

        return await self._flights.run(("q", token, query), load)

    async def search(
        self,
        filter: Filter | None = None,
        order: OrderArg = None,
        limit: int | None = None,
        page_key: str | None = None,
    ) -> Page[T]:
        if self._expires is not None:
            return await self.inner.search(filter, order, limit, page_key)

        async def fetch() -> Any:
            return self._pack_page(await self.inner.search(filter, order, limit, page_key))

        query = self._query_key("s", filter, order, limit, page_key)
        return self._unpack_page(await self._query(query, fetch))

    async def count(self, filter: Filter | None = None) -> int:
        if self._expires is not None:
            return await self.inner.count(filter)

        async def fetch() -> Any:
            n = await self.inner.count(filter)
            return n if self._objects else str(n).encode()

        return int(await self._query(self._query_key("c", filter), fetch))

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

    async def update(
        self, item: T, *, if_match: str | None = None, precondition: Filter | None = None
    ) -> T:
        try:
            return await self.inner.update(item, if_match=if_match, precondition=precondition)
        finally:
            await self._written([self._key_or_none(item)])

    async def put(self, item: T, *, if_match: str | None = None) -> T:
        try:
            return await self.inner.put(item, if_match=if_match)
        finally:
            await self._written([self._key_or_none(item)])

    async def patch(
        self,
        key: str,
        changes: Mapping[str, Any],
        *,
        if_match: str | None = None,
        precondition: Filter | None = None,
    ) -> T:
        try:
            return await self.inner.patch(
                key, changes, if_match=if_match, precondition=precondition
            )
        finally:
            await self._written([self._canon_or_none(key)])

    async def delete(
        self, key: str, *, if_match: str | None = None, precondition: Filter | None = None
    ) -> None:
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
            if e.kind in (EditKind.CREATE, EditKind.UPDATE, EditKind.PUT):
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
