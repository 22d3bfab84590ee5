"""The stackable stashes (async): each wraps a delegate stash and is a stash, as in
zensols.persist, with the failures of the originals fixed (no repeated union keys, a
factory's ``None`` stored). The caches are in ``caching``, the stashes that fill or number
their delegate in ``filling``.

The sync twin ``persisty/stash/_sync/stacked.py`` is generated from this file by
``scripts/generate_sync.py``; edit this file, never the twin.
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from persisty.errors import ValidationError
from persisty.stash._async.base import AsyncDelegateStash, AsyncReadOnlyStash, AsyncStash
from persisty.stash._codec import MISSING
from persisty.stash._protocol import AsyncHasData


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
