"""Running the same worker many times at once: asyncio tasks for async stores, threads for
sync stores (the conformance suite's concurrency tests use one or the other)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any


async def run_concurrently_async(workers: list[Callable[[], Awaitable[Any]]]) -> list[Any]:
    """Run async workers as concurrent tasks; return their results in order."""
    import asyncio

    return list(await asyncio.gather(*(w() for w in workers)))


def run_concurrently(workers: list[Callable[[], Any]]) -> list[Any]:
    """Run sync workers in threads, all at once; return their results in order."""
    with ThreadPoolExecutor(max_workers=len(workers)) as pool:
        futures = [pool.submit(w) for w in workers]
        return [f.result() for f in futures]
