"""One computation per key (async): the miss path of ``@persisted`` for ``async def``
functions, with the cross-process lease when the results live in a store.

The sync twin ``persisty/memo/_sync.py`` (for plain functions: threads instead of tasks)
is generated from this file by ``scripts/generate_sync.py``; edit this file, never the twin.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from persisty.memo._clock import sleep_async
from persisty.stash import MISSING, AsyncStash, AsyncStoreStash


class AsyncFlights:
    """A lock per key, held by the one caller that computes the key's value; the others
    wait for it and then find the value cached."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[Any, list[Any]] = {}

    def _enter(self, key: Any) -> asyncio.Lock:
        with self._guard:
            entry = self._locks.get(key)
            if entry is None:
                entry = self._locks[key] = [asyncio.Lock(), 0]
            entry[1] += 1
            return entry[0]  # type: ignore[no-any-return]

    def _leave(self, key: Any) -> None:
        with self._guard:
            entry = self._locks[key]
            entry[1] -= 1
            if entry[1] == 0:
                del self._locks[key]

    async def run(self, key: Any, lookup: Callable[[], Any], compute: Callable[[], Any]) -> Any:
        """``lookup()`` (plain: the in-process caches) under the key's lock, else
        ``await compute()``; one ``compute`` at a time per key."""
        lock = self._enter(key)
        try:
            async with lock:
                value = lookup()
                if value is not MISSING:
                    return value
                return await compute()
        finally:
            self._leave(key)


LEASE_SECONDS = 300.0
"""How long a computing process holds a key before others take over (it crashed)."""


async def read_entry(stash: AsyncStash, text: str) -> Any:
    """The value stored for the key ``text``, or MISSING (also when it expired)."""
    entry = await stash._lookup("v:" + text)
    if entry is MISSING:
        return MISSING
    value, expires = entry
    if expires is not None and expires <= time.time():
        return MISSING
    return value


async def write_entry(stash: AsyncStash, text: str, value: Any, ttl: float | None) -> None:
    """Store ``value`` for ``text`` (expiring after ``ttl`` seconds when given)."""
    entry = [value, None if ttl is None else time.time() + ttl]
    if isinstance(stash, AsyncStoreStash) and ttl is not None:
        import datetime as dt

        await stash.dump_for("v:" + text, entry, dt.timedelta(seconds=ttl))
    else:
        await stash.dump("v:" + text, entry)


async def through_store(
    stash: AsyncStash,
    leases: AsyncStash,
    text: str,
    compute: Callable[[], Any],
    ttl: float | None,
    lease_seconds: float = LEASE_SECONDS,
) -> Any:
    """The stored value of ``text``, else computed by exactly one caller across every
    process sharing ``stash``: the one that adds the lease item ``l:<text>`` computes,
    stores and drops the lease; the others poll until the value (or a free lease) appears.
    A computation that raises stores nothing and frees the lease for the next caller.
    ``leases`` may be ``stash`` itself."""
    lease_key = "l:" + text
    delay = 0.005
    while True:
        value = await read_entry(stash, text)
        if value is not MISSING:
            return value
        lease = {"owner": uuid.uuid4().hex, "until": time.time() + lease_seconds}
        if await leases.add(lease_key, lease):
            try:
                # the previous holder stores its value before it frees the lease: look again
                value = await read_entry(stash, text)
                if value is not MISSING:
                    return value
                value = await compute()
                await write_entry(stash, text, value, ttl)
                return value
            finally:
                await leases.delete(lease_key)
        held = await leases._lookup(lease_key)
        if held is not MISSING and held.get("until", 0) < time.time():
            await leases.delete(lease_key)  # its holder died: free it for the next adder
            continue
        await sleep_async(delay)
        delay = min(delay * 2, 0.1)


async def compute_entry(spec: Any, work: Any, key: Any, call: Callable[[], Any]) -> Any:
    """The miss path of one call (under the key's flight lock): the file, else the store
    (with its lease), else ``call()``; the value is kept in the work's memory after."""
    value = work._file_get(spec, key)
    if value is MISSING:
        stashes = spec.open_stash_async()
        if stashes is not None:
            value = await through_store(
                stashes[0], stashes[1], spec.store_key(key), call, spec.ttl, spec.lease_seconds
            )
        else:
            value = await call()
            work._file_set(spec, key, value)
    work._memory_set(spec, key, value)
    return value
