"""The caching stashes (async): ``AsyncCacheStash`` (read-through, write-through, no
negative caching by default) and ``AsyncLRUCacheStash`` (every read counts as a use).

The sync twin ``persisty/stash/_sync/caching.py`` is generated from this file by
``scripts/generate_sync.py``; edit this file, never the twin.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

from persisty.errors import ValidationError
from persisty.stash._async.backing import AsyncDictionaryStash
from persisty.stash._async.base import AsyncDelegateStash, AsyncReadOnlyStash, AsyncStash
from persisty.stash._codec import MISSING


class AsyncCacheStash(AsyncDelegateStash):
    """A read-through, write-through cache of the delegate in ``cache`` (a
    :class:`AsyncDictionaryStash` by default, also ``cache_stash``). Misses are not cached
    (``cache_misses=True`` caches them), so a key created later is seen.

    Example::

        stash = AsyncCacheStash(AsyncStoreStash(db, "reports"))
    """

    def __init__(
        self,
        delegate: AsyncStash,
        cache: AsyncStash | None = None,
        *,
        cache_stash: AsyncStash | None = None,
        cache_misses: bool = False,
    ) -> None:
        super().__init__(delegate)
        self.cache_stash: AsyncStash = (
            cache
            if cache is not None
            else cache_stash
            if cache_stash is not None
            else AsyncDictionaryStash()
        )
        self.cache_misses = cache_misses
        self._misses: set[Any] = set()

    async def _lookup(self, key: Any) -> Any:
        value = await self.cache_stash._lookup(key)
        if value is not MISSING:
            return value
        if key in self._misses:
            return MISSING
        value = await self.delegate._lookup(key)
        if value is MISSING:
            if self.cache_misses:
                self._misses.add(key)
            return MISSING
        await self.cache_stash.dump(key, value)
        return value

    async def load(self, key: Any) -> Any:
        value = await self._lookup(key)
        return None if value is MISSING else value

    async def exists(self, key: Any) -> bool:
        if await self.cache_stash.exists(key):
            return True
        if key in self._misses:
            return False
        return await self.delegate.exists(key)

    async def dump(self, key: Any, value: Any) -> None:
        await self.delegate.dump(key, value)
        self._misses.discard(key)
        await self.cache_stash.dump(key, value)

    async def dump_all(self, pairs: Iterable[tuple[Any, Any]]) -> None:
        pairs = list(pairs)
        await self.delegate.dump_all(pairs)
        for key, value in pairs:
            self._misses.discard(key)
            await self.cache_stash.dump(key, value)

    async def add(self, key: Any, value: Any) -> bool:
        added = await self.delegate.add(key, value)
        if added:
            self._misses.discard(key)
            await self.cache_stash.dump(key, value)
        return added

    async def delete(self, key: Any) -> None:
        await self.cache_stash.delete(key)
        if not isinstance(self.delegate, AsyncReadOnlyStash):
            await self.delegate.delete(key)

    async def clear(self) -> None:
        if not isinstance(self.delegate, AsyncReadOnlyStash):
            await self.delegate.clear()
        await self.cache_stash.clear()
        self._misses.clear()

    def evict(self) -> None:
        """Forget the cached misses (the cached values stay)."""
        self._misses.clear()


class AsyncLRUCacheStash(AsyncCacheStash):
    """The ``maxsize`` most recently used values (zensols' ``LRUCacheStash(maxsize)``: an
    ``OrderedDict`` in ``data``); over a ``delegate`` it is a :class:`AsyncCacheStash` that
    keeps only those. Every read (``get``, ``load``, ``[]``, ``exists``) counts as a use.

    Example::

        lru = AsyncLRUCacheStash(2)
        pages = AsyncLRUCacheStash(1000, AsyncDirectoryStash(Path("pages")))
    """

    def __init__(self, maxsize: Any = 128, delegate: AsyncStash | None = None) -> None:
        if isinstance(maxsize, AsyncStash) and delegate is None:  # LRUCacheStash(delegate)
            maxsize, delegate = 128, maxsize
        if not isinstance(maxsize, int) or maxsize < 1:
            raise ValidationError("maxsize is at least 1", field="maxsize")
        self.lru: OrderedDict[Any, Any] = OrderedDict()
        cache = AsyncDictionaryStash(self.lru)
        # without a delegate the LRU dict is the whole stash: an evicted key is gone
        super().__init__(cache if delegate is None else delegate, cache)
        self.maxsize = maxsize

    @property
    def data(self) -> OrderedDict[Any, Any]:
        """The values held, least recently used first."""
        return self.lru

    def _used(self, key: Any) -> None:
        if key in self.lru:
            self.lru.move_to_end(key)
        while len(self.lru) > self.maxsize:
            self.lru.popitem(last=False)

    async def _lookup(self, key: Any) -> Any:
        value = await super()._lookup(key)
        self._used(key)
        return value

    async def exists(self, key: Any) -> bool:
        found = await super().exists(key)
        self._used(key)
        return found

    async def dump(self, key: Any, value: Any) -> None:
        await super().dump(key, value)
        self._used(key)
