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


async def in_thread_async(fn: Callable[[], Any]) -> Any:
    """Run a blocking call without blocking the event loop."""
    import asyncio

    return await asyncio.to_thread(fn)


def in_thread(fn: Callable[[], Any]) -> Any:
    """The sync twin of :func:`in_thread_async`: just call it."""
    return fn()


async def pause_async() -> None:
    """Let the other tasks run."""
    import asyncio

    await asyncio.sleep(0)


def pause() -> None:
    """The sync twin of :func:`pause_async` (threads are preempted anyway)."""
    import time

    time.sleep(0)
