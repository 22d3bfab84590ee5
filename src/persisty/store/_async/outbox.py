"""What a store with a transactional outbox offers the events layer (async protocols).

Edit this file; scripts/generate_sync.py writes its sync twin ``_sync/outbox.py``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol, runtime_checkable

from persisty.store._async.contract import AsyncStore


@runtime_checkable
class AsyncOutbox(Protocol):
    """The changes a store's writes left in its transactional outbox, kept until they are
    delivered: what ``observed(store, outbox=True)`` delivers at least once.

    Example::

        store, outbox = sql_db.store(Note).with_outbox()
        with outbox.collecting() as ids:     # the ids of the changes written in the block
            await store.create(Note(title="x"))
        await outbox.done(ids)               # delivered: clear them
    """

    def collecting(self) -> AbstractContextManager[list[str]]:
        """Collect the ids of the changes written in this block (this task or thread)."""
        ...

    async def done(self, ids: Sequence[str]) -> None:
        """Forget delivered changes."""
        ...

    async def claim(self, limit: int = 100) -> list[tuple[str, str, str, Any, Any, dt.datetime]]:
        """Lease up to ``limit`` changes whose writer did not deliver them in time:
        ``(id, kind, key, old, new, at)``."""
        ...

    async def pending(self) -> int:
        """How many changes wait (leased or not)."""
        ...


@runtime_checkable
class AsyncOutboxSource(Protocol):
    """A store that can write each change to a transactional outbox with its write (the
    SQL stores)."""

    def with_outbox(self, lease: float = 30.0) -> tuple[AsyncStore[Any], AsyncOutbox]:
        """This store again, writing to the outbox, and the outbox; ``lease`` is how many
        seconds a writer has to deliver before another process may take a change over."""
        ...
