"""Opening the database a stash or memo works on, from a Database or a URL (plain code)."""

from __future__ import annotations

import datetime as dt
import re
import threading
import uuid
from typing import Any

from persisty._connect import connect, connect_async
from persisty.errors import ValidationError
from persisty.model import Attr, Index, stored
from persisty.store import AsyncDatabase, Database

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,39}$")
_LOCK = threading.Lock()
_ENTRIES: dict[tuple[str, bool], type[Any]] = {}
_SEQUENCES: dict[str, type[Any]] = {}


def open_database(db_or_url: Database | str) -> tuple[Database, bool]:
    """The sync database (and whether the stash opened it, so closes it)."""
    if isinstance(db_or_url, Database):
        return db_or_url, False
    if isinstance(db_or_url, str):
        return connect(db_or_url), True
    raise ValidationError("a stash needs a Database or a URL", field="db_or_url")


def open_async_database(db_or_url: AsyncDatabase | str) -> tuple[AsyncDatabase, bool]:
    """The async database (and whether the stash opened it, so closes it)."""
    if isinstance(db_or_url, AsyncDatabase):
        return db_or_url, False
    if isinstance(db_or_url, str):
        return connect_async(db_or_url), True
    raise ValidationError("an async stash needs an AsyncDatabase or a URL", field="db_or_url")


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValidationError(
            "a stash name is a letter then letters, digits or _ (at most 40)", field="name"
        )
    return name


def entry_type(name: str, *, indexed: bool = False) -> type[Any]:
    """The ``@stored`` key/value type of the stash ``name`` (store ``stash_<name>``): the
    key, the encoded value, and when it expires (``None``: never; an expired entry is
    invisible on every engine, the contract's expiry). ``indexed``: with an index on the
    expiry, so that ``len`` is a count of the table less an index range of expired
    entries (SQL: a scan of every row's expiry otherwise)."""
    _check_name(name)
    with _LOCK:
        found = _ENTRIES.get((name, indexed))
        if found is None:

            @stored(
                key="key",
                name=f"stash_{name}",
                indexes=[Index("expires_at")] if indexed else (),
            )
            class StashEntry:
                key: str
                value: bytes
                expires_at: dt.datetime | None = Attr(expires=True, default=None)

            StashEntry.__qualname__ = f"StashEntry[{name}]"
            found = _ENTRIES[(name, indexed)] = StashEntry
        return found


def indexes_cheaply(database: Any) -> bool:
    """Whether an extra index costs the database little (SQL: a B-tree next to the
    table; on Redis and DynamoDB an index is another structure every write maintains)."""
    return hasattr(database, "sql_url")


def sequence_type(name: str) -> type[Any]:
    """The type whose ``n`` numbers the keys of an increment-key stash ``name``."""
    _check_name(name)
    with _LOCK:
        found = _SEQUENCES.get(name)
        if found is None:

            @stored(name=f"stash_{name}_seq")
            class StashSequence:
                id: uuid.UUID
                n: int | None = Attr(generated="sequence", default=None)

            StashSequence.__qualname__ = f"StashSequence[{name}]"
            found = _SEQUENCES[name] = StashSequence
        return found


def database_secret(database: Any) -> bytes | None:
    """The pickle codec's default key: one derived from the database's secret for this
    purpose alone (``db.pages.mac``), so the secret itself is never read and a pickle tag
    never equals a page-key signature or an ETag."""
    pages = getattr(database, "pages", None)
    mac = getattr(pages, "mac", None)
    if not callable(mac):
        return None
    key = mac("persisty.stash.pickle", b"")
    return key if isinstance(key, bytes) else None
