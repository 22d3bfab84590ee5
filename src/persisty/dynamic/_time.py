"""Waiting, sync and async (the async catalog's ``sleep_async`` becomes ``sleep_sync``)."""

from __future__ import annotations

import asyncio
import time


async def sleep_async(seconds: float) -> None:
    """Wait without blocking the event loop."""
    await asyncio.sleep(seconds)


def sleep_sync(seconds: float) -> None:
    """Wait (the sync twin of :func:`sleep_async`)."""
    time.sleep(seconds)
