"""The stash base (async): a dict-like store of values by string key, with the names and
meanings of zensols.persist, except that ``None`` is a value like any other.

The sync twin ``persisty/stash/_sync/base.py`` is generated from this file by
``scripts/generate_sync.py``; edit this file, never the twin.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Iterable
from typing import Any

from persisty.errors import Forbidden, ValidationError
from persisty.stash._codec import MISSING
from persisty.stash._protocol import AsyncStashMethods


class AsyncStash(AsyncStashMethods, ABC):
    """A dict-like store of values by key: ``load``, ``dump``, ``delete``, ``keys``,
    ``exists``, ``get``, ``values``, ``items``, ``clear``, ``key_groups(n)``; iterating a
    stash gives ``(key, value)`` pairs (as in zensols, unlike a dict).

    A stored ``None`` is a value: ``exists`` is true for it and ``get`` returns it rather
    than the default. ``load`` of a missing key returns ``None`` (zensols' meaning; use
    ``get(key, default)`` or ``key in stash`` to tell the two apart). ``delete`` of a
    missing key does nothing. A subclass implements ``load``, ``dump``, ``delete`` and
    ``keys`` (and should override ``exists`` and ``count``, which scan the keys here).

    Example::

        stash = AsyncDictionaryStash()
        await stash.dump("a", None)
        await stash.exists("a"), await stash.get("a", 5)      # (True, None)
        async for key, value in stash: ...
    """

    # ---- what a subclass implements ------------------------------------------------------

    @abstractmethod
    async def load(self, key: Any) -> Any:
        """The value of ``key``, or ``None`` when it has none. Factory stashes create the
        value here (so ``load`` may compute where ``get`` would reuse)."""

    @abstractmethod
    async def dump(self, key: Any, value: Any) -> None:
        """Store ``value`` under ``key`` (replacing what was there)."""

    @abstractmethod
    async def delete(self, key: Any) -> None:
        """Remove ``key``; a missing key is not an error."""

    @abstractmethod
    async def keys(self, prefix: str | None = None) -> Iterable[Any]:
        """The keys (those starting with ``prefix`` when given)."""

    # ---- derived, overridden where an engine does better ---------------------------------

    async def _lookup(self, key: Any) -> Any:
        """The value of ``key`` or the private ``MISSING`` sentinel (one read where the
        stash can; this default asks ``exists`` then ``load``)."""
        if await self.exists(key):
            return await self.load(key)
        return MISSING

    async def get(self, key: Any, default: Any = None) -> Any:
        """The value of ``key`` (``None`` if that is what is stored), else ``default``."""
        value = await self._lookup(key)
        return default if value is MISSING else value

    async def exists(self, key: Any) -> bool:
        """Whether ``key`` holds a value (this default scans the keys)."""
        return any(k == key for k in await self._keys(None))

    async def count(self) -> int:
        """How many keys the stash holds (``len(stash)`` on a sync stash)."""
        return sum(1 for _ in await self._keys(None))

    async def clear(self) -> None:
        """Delete every key."""
        for key in list(await self._keys(None)):
            await self.delete(key)

    async def key_groups(self, n: int) -> list[list[Any]]:
        """The keys in lists of ``n`` (the last one shorter).

        Example::

            await stash.key_groups(2)    # [["a", "b"], ["c"]]
        """
        if n < 1:
            raise ValidationError("a key group has at least one key", field="n")
        keys = list(await self._keys(None))
        return [keys[i : i + n] for i in range(0, len(keys), n)]

    async def values(self) -> AsyncIterator[Any]:
        """Every value, in the order of ``keys()``."""
        async for _key, value in self.items():
            yield value

    async def items(self) -> AsyncIterator[tuple[Any, Any]]:
        """Every ``(key, value)`` pair, in the order of ``keys()``."""
        for key in list(await self._keys(None)):
            value = await self._lookup(key)
            if value is not MISSING:  # deleted since the keys were listed
                yield key, value

    async def dump_all(self, pairs: Iterable[tuple[Any, Any]]) -> None:
        """Store every ``(key, value)``; all or nothing on stashes that can (stores,
        dictionaries, directories with their journal), one by one elsewhere."""
        for key, value in pairs:
            await self.dump(key, value)

    async def add(self, key: Any, value: Any) -> bool:
        """Store ``value`` only if ``key`` holds nothing; whether it was stored. Atomic on
        the backing stashes (concurrent adders of one key: exactly one wins)."""
        if await self.exists(key):
            return False
        await self.dump(key, value)
        return True

    async def close(self) -> None:  # most stashes hold nothing to release
        """Release what the stash holds open (connections, files)."""

    async def _getitem(self, key: Any) -> Any:
        value = await self._lookup(key)
        if value is MISSING:
            raise KeyError(key)
        return value

    async def _keys(self, prefix: str | None) -> Iterable[Any]:
        # a zensols-style subclass may define keys(self) without a prefix
        if prefix is None:
            return await self.keys()
        return await self.keys(prefix)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class AsyncDelegateStash(AsyncStash):
    """A stash that passes every call to ``delegate``; the base of the stackable stashes.

    Example::

        class Logged(AsyncDelegateStash):
            async def dump(self, key, value):
                print("dump", key)
                await super().dump(key, value)
    """

    def __init__(self, delegate: AsyncStash) -> None:
        if delegate is None:
            raise ValidationError("a delegate stash is required", field="delegate")
        self.delegate = delegate

    async def load(self, key: Any) -> Any:
        return await self.delegate.load(key)

    async def _lookup(self, key: Any) -> Any:
        return await self.delegate._lookup(key)

    async def get(self, key: Any, default: Any = None) -> Any:
        value = await self._lookup(key)
        return default if value is MISSING else value

    async def exists(self, key: Any) -> bool:
        return await self.delegate.exists(key)

    async def dump(self, key: Any, value: Any) -> None:
        await self.delegate.dump(key, value)

    async def dump_all(self, pairs: Iterable[tuple[Any, Any]]) -> None:
        await self.delegate.dump_all(pairs)

    async def add(self, key: Any, value: Any) -> bool:
        return await self.delegate.add(key, value)

    async def delete(self, key: Any) -> None:
        await self.delegate.delete(key)

    async def keys(self, prefix: str | None = None) -> Iterable[Any]:
        return await self.delegate._keys(prefix)

    async def count(self) -> int:
        return await self.delegate.count()

    async def clear(self) -> None:
        await self.delegate.clear()

    async def close(self) -> None:
        await self.delegate.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.delegate!r})"


class AsyncReadOnlyStash(AsyncDelegateStash):
    """A stash whose writes raise ``Forbidden``: over a ``delegate`` it makes that stash
    read only; without one it is the base of a factory that implements ``load`` and
    ``keys`` (as zensols' ``ReadOnlyStash``). ``strict = False`` ignores writes instead.

    Example::

        class Squares(AsyncReadOnlyStash):
            async def load(self, key):
                return int(key) ** 2
            async def keys(self, prefix=None):
                return [str(i) for i in range(10)]
    """

    strict = True

    def __init__(self, delegate: AsyncStash | None = None) -> None:
        self.delegate = delegate  # type: ignore[assignment]

    def _refuse(self, what: str) -> bool:
        if self.strict:
            raise Forbidden(f"{type(self).__name__} is read only: {what} is not allowed")
        return False

    async def load(self, key: Any) -> Any:
        if self.delegate is None:
            raise NotImplementedError(f"{type(self).__name__} must implement load()")
        return await self.delegate.load(key)

    async def _lookup(self, key: Any) -> Any:
        if self.delegate is None:
            return await AsyncStash._lookup(self, key)
        return await self.delegate._lookup(key)

    async def exists(self, key: Any) -> bool:
        if self.delegate is None:
            return await AsyncStash.exists(self, key)
        return await self.delegate.exists(key)

    async def keys(self, prefix: str | None = None) -> Iterable[Any]:
        if self.delegate is None:
            raise NotImplementedError(f"{type(self).__name__} must implement keys()")
        return await self.delegate._keys(prefix)

    async def count(self) -> int:
        if self.delegate is None:
            return await AsyncStash.count(self)
        return await self.delegate.count()

    async def dump(self, key: Any, value: Any) -> None:
        self._refuse("dump")

    async def dump_all(self, pairs: Iterable[tuple[Any, Any]]) -> None:
        self._refuse("dump")

    async def add(self, key: Any, value: Any) -> bool:
        return self._refuse("dump")

    async def delete(self, key: Any) -> None:
        self._refuse("delete")

    async def clear(self) -> None:
        self._refuse("clear")

    async def close(self) -> None:
        if self.delegate is not None:
            await self.delegate.close()
