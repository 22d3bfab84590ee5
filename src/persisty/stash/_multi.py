"""``MultiProcessStash`` and ``AsyncMultiProcessStash``: fill a stash by computing values in
a pool of processes (the pool is the same for both; the async one awaits the chunks and
writes them through its async delegate)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any

from persisty.errors import ValidationError
from persisty.stash._async.base import AsyncDelegateStash, AsyncStash
from persisty.stash._sync.base import DelegateStash, Stash


def _compute(fn: Callable[[Any], Any], keys: list[Any]) -> list[tuple[Any, Any]]:
    return [(k, fn(k)) for k in keys]


def _chunks(todo: list[Any], chunk_size: int, workers: int | None) -> tuple[list[list[Any]], int]:
    if chunk_size < 1:
        raise ValidationError("chunk_size is at least 1", field="chunk_size")
    if workers is not None and workers < 1:
        raise ValidationError("workers is at least 1", field="workers")
    chunks = [todo[i : i + chunk_size] for i in range(0, len(todo), chunk_size)]
    return chunks, min(workers or os.cpu_count() or 1, max(1, len(chunks)))


class MultiProcessStash(DelegateStash):
    """A stash whose values are computed in worker processes by :meth:`populate`; each
    chunk of keys is written to the delegate in one atomic ``dump_all``, so a run that is
    killed leaves whole chunks only, and the next run computes only the keys still missing.

    Example::

        def square(key):            # a module-level function (it is sent to the workers)
            return int(key) ** 2

        stash = MultiProcessStash(StoreStash("sqlite:///squares.db", "squares"))
        stash.populate(square, [str(i) for i in range(10_000)], workers=4, chunk_size=500)
    """

    def __init__(self, delegate: Stash) -> None:
        super().__init__(delegate)

    def missing(self, keys: Iterable[Any]) -> list[Any]:
        """The keys of ``keys`` the delegate has no value for (in order, once each)."""
        present = set(self.delegate.keys())
        return [k for k in dict.fromkeys(keys) if k not in present]

    def populate(
        self,
        fn: Callable[[Any], Any],
        keys: Iterable[Any],
        workers: int | None = None,
        chunk_size: int = 100,
    ) -> int:
        """Compute ``fn(key)`` for every key of ``keys`` the stash lacks, in ``workers``
        processes (default: the CPU count), ``chunk_size`` keys per task; return how many
        values were computed. A chunk's values are written together, all or nothing."""
        chunks, workers = _chunks(self.missing(keys), chunk_size, workers)
        if not chunks:
            return 0
        done = 0
        with ProcessPoolExecutor(max_workers=workers) as pool:
            pending: set[Future[list[tuple[Any, Any]]]] = {
                pool.submit(_compute, fn, chunk) for chunk in chunks
            }
            try:
                while pending:
                    finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for future in finished:
                        pairs = future.result()
                        self.delegate.dump_all(pairs)
                        done += len(pairs)
            finally:
                for future in pending:
                    future.cancel()
        return done


class AsyncMultiProcessStash(AsyncDelegateStash):
    """:class:`MultiProcessStash` for an async delegate: ``await stash.populate(fn, keys)``
    computes in a process pool and writes each chunk with one atomic ``dump_all``.

    Example::

        stash = AsyncMultiProcessStash(AsyncStoreStash("sqlite:///squares.db", "squares"))
        await stash.populate(square, [str(i) for i in range(10_000)], workers=4)
    """

    def __init__(self, delegate: AsyncStash) -> None:
        super().__init__(delegate)

    async def missing(self, keys: Iterable[Any]) -> list[Any]:
        """The keys of ``keys`` the delegate has no value for (in order, once each)."""
        present = set(await self.delegate._keys(None))
        return [k for k in dict.fromkeys(keys) if k not in present]

    async def populate(
        self,
        fn: Callable[[Any], Any],
        keys: Iterable[Any],
        workers: int | None = None,
        chunk_size: int = 100,
    ) -> int:
        """Compute ``fn(key)`` for every key the stash lacks; return how many were computed."""
        chunks, workers = _chunks(await self.missing(keys), chunk_size, workers)
        if not chunks:
            return 0
        loop = asyncio.get_running_loop()
        done = 0
        with ProcessPoolExecutor(max_workers=workers) as pool:
            futures = [loop.run_in_executor(pool, _compute, fn, chunk) for chunk in chunks]
            try:
                for next_done in asyncio.as_completed(futures):
                    pairs = await next_done
                    await self.delegate.dump_all(pairs)
                    done += len(pairs)
            finally:
                for future in futures:
                    future.cancel()
        return done
