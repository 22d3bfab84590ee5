"""The stashes that fill or number their delegate (async): ``AsyncOneShotFactoryStash``
(a crashed fill is redone, never served), ``AsyncIncrementKeyStash`` and
``AsyncIncrementKeyDirectoryStash`` (concurrent writers never take one key) and
``AsyncProtectiveStash`` (a failing dump stores the error).

The sync twin ``persisty/stash/_sync/filling.py`` is generated from this file by
``scripts/generate_sync.py``; edit this file, never the twin.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterable, Callable, Iterable
from pathlib import Path
from typing import Any

from persisty.errors import PersistyError
from persisty.stash._async.backing import AsyncDirectoryStash
from persisty.stash._async.base import AsyncDelegateStash, AsyncStash
from persisty.stash._async.stacked import AsyncPrimeableStash
from persisty.stash._codec import MISSING
from persisty.stash._protocol import AsyncHasData, StashedError

logger = logging.getLogger("persisty.stash")

FILLED = "__persisty_filled__"
"""The key a one-shot fill writes in the batch of its last items (hidden from its keys)."""


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
