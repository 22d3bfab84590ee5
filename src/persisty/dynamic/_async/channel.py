"""Telling other processes at once that the catalog changed, where the engine can: on
Redis, a pub/sub channel per namespace. Elsewhere (and whenever the channel fails) the
polled change counter is what bounds the staleness."""

from __future__ import annotations

import contextlib
from typing import Any

from persisty.dynamic._time import close_pubsub_async
from persisty.store import AsyncDatabase

REDIS_SCHEMES = ("redis", "rediss")


class AsyncChangeChannel:
    """Publish "the catalog changed" and notice it without waiting (no background task:
    each look reads what has arrived, without blocking)."""

    def __init__(self, db: AsyncDatabase) -> None:
        client = getattr(db, "client", None)
        scheme = db.url.split(":", 1)[0]
        self.client: Any = client if scheme in REDIS_SCHEMES else None
        prefix = getattr(db, "prefix", "persisty")
        self.name = f"{prefix}:dynamic-catalog:{db.namespace or '_'}"
        self._subscription: Any = None

    async def publish(self) -> None:
        """Tell every subscribed process (best effort: they poll anyway)."""
        if self.client is None:
            return
        # best effort: the counter still tells them within staleness
        with contextlib.suppress(Exception):
            await self.client.publish(self.name, b"changed")

    async def changed(self) -> bool:
        """Whether a change was announced since the last look (subscribing on the first)."""
        if self.client is None:
            return False
        try:
            if self._subscription is None:
                sub = self.client.pubsub(ignore_subscribe_messages=True)
                await sub.subscribe(self.name)
                self._subscription = sub
                return False
            seen = False
            while await self._subscription.get_message(timeout=0) is not None:
                seen = True
            return seen
        except Exception:  # a broken channel: fall back to polling
            self._subscription = None
            return False

    async def close(self) -> None:
        """Stop listening (the subscription's connection goes back to the pool)."""
        if self._subscription is not None:
            sub, self._subscription = self._subscription, None
            with contextlib.suppress(Exception):  # closing a broken connection
                await close_pubsub_async(sub)
