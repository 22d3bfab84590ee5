"""Opening the database of a service from a URL or a Database (sync-only helpers)."""

from __future__ import annotations

import os
import sqlite3
from typing import Any

import persisty
import persisty.aio
from persisty.errors import Unavailable, ValidationError
from persisty.store import AsyncDatabase, Database


def normalize_url(url: str) -> str:
    """rstore's ``sqlite://file.db`` (a relative file after two slashes) as persisty's
    ``sqlite:///file.db``; every other URL unchanged."""
    if url.startswith("sqlite://") and len(url) > 9 and url[9] != "/":
        return "sqlite:///" + url[9:]
    return url


def kv_connect(db_or_url: Any) -> tuple[Database, bool]:
    """``(database, owned)``: a sync Database as given, or one opened from a URL (owned:
    closed with the service)."""
    if isinstance(db_or_url, Database):
        return db_or_url, False
    if isinstance(db_or_url, str):
        return persisty.connect(normalize_url(db_or_url)), True
    raise ValidationError("pass a URL or a sync Database (persisty.connect(...))", field="db")


def kv_connect_async(db_or_url: Any) -> tuple[AsyncDatabase, bool]:
    """Like :func:`kv_connect`, for async services (``persisty.aio.connect``)."""
    if isinstance(db_or_url, AsyncDatabase):
        return db_or_url, False
    if isinstance(db_or_url, str):
        return persisty.aio.connect(normalize_url(db_or_url)), True
    raise ValidationError("pass a URL or an async Database (persisty.aio.connect(...))", field="db")


def frozen_missing(url: str, what: str) -> Unavailable:
    return Unavailable(f"{url}: {what} does not exist (a frozen store creates nothing)")


def sqlite_has_table(path: str, table: str) -> bool:
    """Whether the SQLite file exists and has ``table``, opened read-only (creates
    nothing, not even the file)."""
    if not os.path.isfile(path):
        return False
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error:
        return False
    try:
        rows = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
        ).fetchall()
        return bool(rows)
    except sqlite3.Error:
        return False
    finally:
        conn.close()
