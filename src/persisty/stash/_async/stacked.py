"""The stackable stashes (async): each wraps a delegate stash and is a stash, as in
zensols.persist, with the failures of the originals fixed (no cached misses, no repeated
union keys, no half fill served as complete).

The sync twin ``persisty/stash/_sync/stacked.py`` is generated from this file by
``scripts/generate_sync.py``; edit this file, never the twin.
"""

from __future__ import annotations

import itertools
import logging
import sys
from collections import OrderedDict
from collections.abc import AsyncIterable, Callable, Iterable
from pathlib import Path
from typing import Any

from persisty.errors import PersistyError, ValidationError
from persisty.stash._async.backing import AsyncDictionaryStash, AsyncDirectoryStash
from persisty.stash._async.base import AsyncDelegateStash, AsyncReadOnlyStash, AsyncStash
from persisty.stash._codec import MISSING
from persisty.stash._protocol import AsyncHasData, StashedError

logger = logging.getLogger("persisty.stash")

FILLED = "__persisty_filled__"
"""The key a one-shot fill writes in the batch of its last items (hidden from its keys)."""


class AsyncKeyLimitStash(AsyncDelegateStash):
    """At most ``limit`` of the delegate's keys (useful to debug on a sample).

    Example::

        AsyncKeyLimitStash(stash, limit=10)
    """

    def __init__(self, delegate: AsyncStash, limit: int = sys.maxsize) -> None:
        super().__init__(delegate)
        if limit < 0:
            raise ValidationError("limit is at least 0", field="limit")
        self.limit = limit

    async def keys(self, prefix: str | None = None) -> Iterable[Any]:
        return list(itertools.islice(await self.delegate._keys(prefix), self.limit))

    async def exists(self, key: Any) -> bool:
        return key in list(await self.keys())

    async def _lookup(self, key: Any) -> Any:
        if not await self.exists(key):
            return MISSING
        return await self.delegate._lookup(key)

    async def count(self) -> int:
        return min(self.limit, await self.delegate.count())


class AsyncKeySubsetStash(AsyncReadOnlyStash):
    """Only the keys in ``key_subset`` (a set, or a file of one key a line) of the
    delegate; with ``dynamic_subset`` only those the delegate also has.

    Example::

        AsyncKeySubsetStash(stash, {"a", "b"})
    """

    def __init__(
        self, delegate: AsyncStash, key_subset: Iterable[Any] | Path, dynamic_subset: bool = False
    ) -> None:
        super().__init__(delegate)
        if isinstance(key_subset, Path):
            lines = key_subset.read_text().splitlines()
            key_subset = [ln.strip() for ln in lines if ln.strip()]
        self.key_subset = frozenset(key_subset)
        self._order = sorted(self.key_subset, key=str)
        self.dynamic_subset = dynamic_subset

    async def exists(self, key: Any) -> bool:
        if key not in self.key_subset:
            return False
        return not self.dynamic_subset or await self.delegate.exists(key)

    async def _lookup(self, key: Any) -> Any:
        if key not in self.key_subset:
            return MISSING
        return await self.delegate._lookup(key)

    async def load(self, key: Any) -> Any:
        value = await self._lookup(key)
        return None if value is MISSING else value

    async def keys(self, prefix: str | None = None) -> Iterable[Any]:
        keys = [k for k in self._order if prefix is None or str(k).startswith(prefix)]
        if self.dynamic_subset:
            keys = [k for k in keys if await self.delegate.exists(k)]
        return keys

    async def count(self) -> int:
        return len(list(await self.keys()))


class AsyncPreemptiveStash(AsyncHasData, AsyncDelegateStash):
    """Knows whether its delegate has any data yet (``has_data``), so data can be made
    ahead of use; ``invalidate()`` forgets what it knew.

    Example::

        stash = AsyncPreemptiveStash(AsyncDirectoryStash(path))
        await stash.dump("a", 1)       # has_data is now known to be true
        stash.invalidate()             # the next has_data asks the directory again
    """

    def __init__(self, delegate: AsyncStash) -> None:
        super().__init__(delegate)
        self._known: bool | None = None

    async def _has_data(self) -> bool:
        if self._known is None:
            self._known = await self._compute_has_data()
        return self._known

    async def _compute_has_data(self) -> bool:
        return any(True for _ in await self.delegate._keys(None))

    def invalidate(self) -> None:
        """Forget whether there is data (the next ``has_data`` asks the delegate)."""
        self._known = None

    async def dump(self, key: Any, value: Any) -> None:
        await super().dump(key, value)
        self._known = True

    async def delete(self, key: Any) -> None:
        await super().delete(key)
        self.invalidate()

    async def clear(self) -> None:
        await super().clear()
        self.invalidate()


class AsyncPrimeableStash(AsyncDelegateStash):
    """Calls ``prime()`` once, before the first access (reads, keys, counts); a subclass
    makes its data there. The default primes a primeable delegate.

    Example::

        class Loaded(AsyncPrimeableStash):
            async def prime(self):
                await self.delegate.dump_all(read_rows())
    """

    _primed = False

    async def prime(self) -> None:
        """Prepare the data (called before the first access)."""
        if isinstance(self.delegate, AsyncPrimeableStash):
            await self.delegate._prime_once()

    async def _prime_once(self) -> None:
        if not self._primed:
            await self.prime()
            self._primed = True

    async def load(self, key: Any) -> Any:
        await self._prime_once()
        return await super().load(key)

    async def _lookup(self, key: Any) -> Any:
        await self._prime_once()
        return await super()._lookup(key)

    async def exists(self, key: Any) -> bool:
        await self._prime_once()
        return await super().exists(key)

    async def keys(self, prefix: str | None = None) -> Iterable[Any]:
        await self._prime_once()
        return await super().keys(prefix)

    async def count(self) -> int:
        await self._prime_once()
        return await super().count()


class AsyncFactoryStash(AsyncPreemptiveStash):
    """Read-through: a key the delegate lacks is made by ``factory.load(key)`` and dumped
    to the delegate (a factory's ``None`` is stored as ``None``; ``dump_factory_nones=False``
    returns it without storing). Keys are the delegate's once it has data, else the
    factory's.

    Example::

        stash = AsyncFactoryStash(AsyncDirectoryStash(path), Squares())
        await stash.get("3")      # computed once, then read from the directory
    """

    def __init__(
        self,
        delegate: AsyncStash,
        factory: AsyncStash,
        enable_preemptive: bool = True,
        dump_factory_nones: bool = True,
    ) -> None:
        super().__init__(delegate)
        self.factory = factory
        self.enable_preemptive = enable_preemptive
        self.dump_factory_nones = dump_factory_nones

    async def _compute_has_data(self) -> bool:
        return self.enable_preemptive and await super()._compute_has_data()

    async def _lookup(self, key: Any) -> Any:
        value = await self.delegate._lookup(key)
        if value is MISSING:
            value = await self.factory.load(key)
            if value is not None or self.dump_factory_nones:
                await self.delegate.dump(key, value)
                self.invalidate()
        return value

    async def load(self, key: Any) -> Any:
        value = await self._lookup(key)
        return None if value is MISSING else value

    async def keys(self, prefix: str | None = None) -> Iterable[Any]:
        if await self._has_data():
            return await self.delegate._keys(prefix)
        return await self.factory._keys(prefix)

    async def count(self) -> int:
        return sum(1 for _ in await self.keys())

    async def clear(self) -> None:
        await super().clear()
        if not isinstance(self.factory, AsyncReadOnlyStash):
            await self.factory.clear()


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


class AsyncSortedStash(AsyncDelegateStash):
    """The delegate's keys (and so its iteration) sorted, by ``sort_function`` if given.

    Example::

        AsyncSortedStash(stash, sort_function=int)
    """

    def __init__(
        self, delegate: AsyncStash, sort_function: Callable[[Any], Any] | None = None
    ) -> None:
        super().__init__(delegate)
        self.sort_function = sort_function

    async def keys(self, prefix: str | None = None) -> Iterable[Any]:
        return sorted(await self.delegate._keys(prefix), key=self.sort_function)


class AsyncUnionStash(AsyncReadOnlyStash):
    """The union of ``stashes``: a key's value comes from the first stash that has it,
    keys are listed once (in the order first seen), ``get(key, default)`` honours the
    default. Read only.

    Example::

        AsyncUnionStash([local, shared])
    """

    def __init__(self, stashes: Iterable[AsyncStash]) -> None:
        super().__init__(None)
        self.stashes = tuple(stashes)

    async def _lookup(self, key: Any) -> Any:
        for stash in self.stashes:
            value = await stash._lookup(key)
            if value is not MISSING:
                return value
        return MISSING

    async def load(self, key: Any) -> Any:
        value = await self._lookup(key)
        return None if value is MISSING else value

    async def exists(self, key: Any) -> bool:
        found = False
        for stash in self.stashes:
            found = await stash.exists(key)
            if found:
                break
        return found

    async def keys(self, prefix: str | None = None) -> Iterable[Any]:
        seen: dict[Any, None] = {}
        for stash in self.stashes:
            for key in await stash._keys(prefix):
                seen.setdefault(key, None)
        return list(seen)

    async def count(self) -> int:
        return len(list(await self.keys()))

    async def close(self) -> None:
        for stash in self.stashes:
            await stash.close()


Worker = Callable[[], Any] | Iterable[tuple[Any, Any]] | AsyncIterable[tuple[Any, Any]]


class AsyncOneShotFactoryStash(AsyncHasData, AsyncPrimeableStash):
    """Filled once by ``worker`` (a callable returning, or an iterable of, ``(key, value)``
    pairs) before the first access. The fill is written in batches of ``batch_size`` and
    marked complete in the same atomic batch as its last items, so a fill that crashed is
    redone on the next access, never served as complete.

    Example::

        stash = AsyncOneShotFactoryStash(AsyncStoreStash(db, "words"),
                                         lambda: ((w, len(w)) for w in WORDS))
        await stash.get("apple")
    """

    def __init__(
        self, delegate: AsyncStash, worker: Worker | None = None, batch_size: int = 500
    ) -> None:
        super().__init__(delegate)
        if worker is not None:
            self.worker = worker
        self.batch_size = batch_size
        self._known: bool | None = None

    async def _has_data(self) -> bool:
        if self._known is None:
            self._known = await self.delegate.exists(FILLED)
        return self._known

    def invalidate(self) -> None:
        """Forget whether the fill is complete (the next access checks the delegate)."""
        self._known = None
        self._primed = False

    async def _pairs(self) -> AsyncIterable[tuple[Any, Any]]:
        worker: Any = getattr(self, "worker", None)
        if worker is None:
            raise PersistyError(f"{type(self).__name__} needs a worker")
        source = worker() if callable(worker) else worker
        if hasattr(source, "__aiter__"):
            async for pair in source:
                yield pair
        else:
            for pair in source:
                yield pair

    async def prime(self) -> None:
        await super().prime()
        if await self._has_data():
            return
        batch: list[tuple[Any, Any]] = []
        async for key, value in self._pairs():
            batch.append((key, value))
            if len(batch) > self.batch_size:
                await self.delegate.dump_all(batch[:-1])
                batch = batch[-1:]
        batch.append((FILLED, True))
        await self.delegate.dump_all(batch)
        self._known = True

    async def keys(self, prefix: str | None = None) -> Iterable[Any]:
        return [k for k in await super().keys(prefix) if k != FILLED]

    async def exists(self, key: Any) -> bool:
        return key != FILLED and await super().exists(key)

    async def _lookup(self, key: Any) -> Any:
        if key == FILLED:
            return MISSING
        return await super()._lookup(key)

    async def count(self) -> int:
        await self._prime_once()
        return max(0, await self.delegate.count() - 1)

    async def clear(self) -> None:
        await self.delegate.clear()
        self.invalidate()


class AsyncIncrementKeyStash(AsyncDelegateStash):
    """Stores each value under the next integer key: ``await stash.dump(value)`` returns
    the key it used. Over a store stash the number comes from a store sequence; elsewhere
    from an atomic add-if-absent, so concurrent writers (threads or processes) never take
    the same key. ``load()`` without a key reads the highest key.

    Example::

        stash = AsyncIncrementKeyStash(AsyncStoreStash(db, "runs"))
        key = await stash.dump({"loss": 0.3})    # "1", then "2", ...
    """

    _NONE: Any = object()

    def __init__(self, delegate: AsyncStash) -> None:
        super().__init__(delegate)
        self._last: int | None = None

    async def _int_keys(self) -> list[int]:
        return [int(k) for k in await self.delegate._keys(None) if str(k).isdigit()]

    async def get_last_key(self, inc: bool = False) -> str:
        """The highest key (``"0"`` when empty); with ``inc`` the one after it."""
        keys = await self._int_keys()
        last = max(keys) if keys else 0
        return str(last + 1 if inc else last)

    async def dump(self, key_or_value: Any, value: Any = _NONE) -> Any:
        if value is not self._NONE:
            await self.delegate.dump(key_or_value, value)
            return key_or_value
        value = key_or_value
        next_sequence = getattr(self.delegate, "next_sequence", None)
        while True:
            if next_sequence is not None:
                n = await next_sequence()
            else:
                if self._last is None:
                    keys = await self._int_keys()
                    self._last = max(keys) if keys else 0
                self._last += 1
                n = self._last
            key = str(n)
            if await self.delegate.add(key, value):
                return key

    async def load(self, key: Any = None) -> Any:
        if key is None:
            key = await self.get_last_key()
        return await self.delegate.load(key)

    async def keys(self, prefix: str | None = None) -> Iterable[Any]:
        return [k for k in await self.delegate._keys(prefix) if str(k).isdigit()]

    async def count(self) -> int:
        return len(list(await self.keys()))


_ERROR_TAG = "__persisty_stashed_error__"


class AsyncProtectiveStash(AsyncDelegateStash):
    """A dump that fails stores the error instead (reading the key gives a
    :class:`StashedError` naming it), so one bad value does not stop a batch job.

    Example::

        stash = AsyncProtectiveStash(AsyncDirectoryStash(path))
        await stash.dump("x", object())      # stores the encoding error
    """

    def __init__(self, delegate: AsyncStash, log_errors: bool = False) -> None:
        super().__init__(delegate)
        self.log_errors = log_errors

    async def dump(self, key: Any, value: Any) -> None:
        try:
            await self.delegate.dump(key, value)
        except Exception as e:
            if self.log_errors:
                logger.warning("could not dump %r, storing the error: %s", key, e)
            await self.delegate.dump(key, {_ERROR_TAG: type(e).__name__, "message": str(e)})

    async def _lookup(self, key: Any) -> Any:
        value = await self.delegate._lookup(key)
        if isinstance(value, dict) and _ERROR_TAG in value:
            return StashedError(str(value.get("message", "")), type_name=value[_ERROR_TAG])
        return value

    async def load(self, key: Any) -> Any:
        value = await self._lookup(key)
        return None if value is MISSING else value


class AsyncIncrementKeyDirectoryStash(AsyncIncrementKeyStash):
    """:class:`AsyncIncrementKeyStash` over files ``<name>-<n>.dat`` in ``path`` (zensols'
    ``IncrementKeyDirectoryStash``); a new key is taken with an atomic hard link, so writers
    in several processes never overwrite each other.

    Example::

        runs = AsyncIncrementKeyDirectoryStash(Path("runs"), name="run")
        await runs.dump({"loss": 0.3})     # runs/run-1.dat
    """

    def __init__(
        self,
        path: Path | str,
        name: str = "data",
        *,
        codec: str = "json",
        secret: bytes | str | None = None,
    ) -> None:
        super().__init__(
            AsyncDirectoryStash(path, name + "-{name}.dat", codec=codec, secret=secret)
        )
        self.path = Path(path)
        self.name = name
