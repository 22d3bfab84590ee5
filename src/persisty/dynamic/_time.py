"""Small sync/async twins the generated code calls by name (``sleep_async`` becomes
``sleep_sync``, ``close_pubsub_async`` becomes ``close_pubsub``)."""

from __future__ import annotations

import asyncio
import time
from typing import Any


async def sleep_async(seconds: float) -> None:
    """Wait without blocking the event loop."""
    await asyncio.sleep(seconds)


def sleep_sync(seconds: float) -> None:
    """Wait (the sync twin of :func:`sleep_async`)."""
    time.sleep(seconds)


async def close_pubsub_async(sub: Any) -> None:
    """Close a redis.asyncio subscription (``aclose``; ``reset`` is deprecated)."""
    await sub.aclose()


def close_pubsub(sub: Any) -> None:
    """Close a redis-py subscription."""
    sub.close()
