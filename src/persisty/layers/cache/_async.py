"""The cache layer (async): a read-through cache of items, searches and counts.

Edit this file; scripts/generate_sync.py writes its sync twin ``layers/cache/_sync.py``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from time import monotonic as _monotonic
from typing import Any, TypeVar

import msgspec

from persisty.errors import PersistyError, ValidationError
from persisty.layers._primitives import AsyncFlights, CacheStats
from persisty.layers.cache._backends_async import MISSING, AsyncCacheBackend, AsyncMemoryCache
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
