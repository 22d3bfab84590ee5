"""Sleeping in the sync and the async flows (named apart so the sync twin can be generated)."""

from __future__ import annotations

import asyncio
import time


async def sleep_async(seconds: float) -> None:
    """``asyncio.sleep`` (the sync twin calls :func:`sleep_sync`)."""
    await asyncio.sleep(seconds)


def sleep_sync(seconds: float) -> None:
    """``time.sleep``."""
    time.sleep(seconds)
