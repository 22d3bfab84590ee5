"""``persisty.connect``: the one way in (``persisty.aio.connect`` for asyncio)."""

from __future__ import annotations

import os
from typing import Any

from persisty.backends import DEFAULT_URL, database_class
from persisty.store import AsyncDatabase, Clock, Database


def resolve_url(url: str | None) -> str:
    """``url``, else ``$PERSISTY_URL``, else the embedded SQLite default."""
    return url or os.environ.get("PERSISTY_URL") or DEFAULT_URL


def connect(
    url: str | None = None,
    *,
    namespace: str | None = None,
    secret: bytes | str | None = None,
    clock: Clock | None = None,
    **options: Any,
) -> Database:
    """Open a database by URL and get sync stores from it.

    ``memory://``, ``file:///dir``, ``sqlite:///path.db``, ``postgresql://…``,
    ``mysql://…``, ``redis://…``, ``dynamodb://…``. Without a URL: ``$PERSISTY_URL``, else
    ``sqlite:///persisty.db``. ``namespace`` isolates one tenant's stores from another's.
    ``clock`` (a :class:`persisty.store.Clock`) is the time the stores write and expire
    items by (``db.clock``; the system clock by default): tests inject one to move time.

    Example::

        db = persisty.connect("memory://")
        notes = db.store(Note)
    """
    url = resolve_url(url)
    db: Database = database_class(url, False)(url, namespace=namespace, secret=secret, **options)
    if clock is not None:
        db.clock = clock
    return db


def connect_async(
    url: str | None = None,
    *,
    namespace: str | None = None,
    secret: bytes | str | None = None,
    clock: Clock | None = None,
    **options: Any,
) -> AsyncDatabase:
    """Like :func:`connect`, with async stores (every method awaitable)."""
    url = resolve_url(url)
    db: AsyncDatabase = database_class(url, True)(
        url, namespace=namespace, secret=secret, **options
    )
    if clock is not None:
        db.clock = clock
    return db
