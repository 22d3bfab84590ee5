"""The process-local answer cache of a ``StoreStash`` on a SQLite file (plain code, shared
by the sync and async stashes): the answers to ``exists``, ``get`` and ``len``, each kept
only as long as the file's WAL-index header (:mod:`persisty.stash._walwatch`) is the one
read before the query that gave it.

The protocol, for a read that misses: ``token = answers.begin()`` (reads the header; a new
header starts an empty cache), then the query, then ``answers.put(token, …)``, which keeps
the answer only if no other fill saw a newer header and no write of ours came in between.
A hit compares the header with the one its answer was filled under (96 bytes, no system
call): any commit since, by any connection or process, or a WAL restart, changed it, so
the answer is dropped and SQLite asked again. An answer for an entry with an expiry is
kept until that instant only; a cached ``len`` until the earliest expiry of the entries it
counted. Anything in doubt (no watch, the two header copies unequal) answers ``None``: ask
SQLite.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

from persisty.stash._codec import MISSING
from persisty.stash._walwatch import HEADER, WalWatch, consistent, on_fork, watch_for

PRESENT = object()  # an entry too large to keep: ``exists`` only
ATTEMPTS = 3  # tries at opening the watch (the file may not exist before the first read)
_SPAN = 2 * HEADER


class _State:
    """The answers filled under one header ``stamp``."""

    __slots__ = ("count", "count_until", "entries", "size", "stamp", "view")

    def __init__(self, view: Any, stamp: bytes | None) -> None:
        self.view, self.stamp = view, stamp
        self.entries: dict[str, tuple[Any, float | None]] = {}
        self.count: int | None = None
        self.count_until: float | None = None
        self.size = 0


_OFF = _State(None, None)


class Answers:
    """The answers of one stash, valid while the SQLite file's WAL header is unchanged;
    at most ``max_entries`` keys and ``max_bytes`` of kept values (the oldest go first);
    a value longer than ``max_value`` bytes is not kept (``exists`` of it is).

    Example::

        answers = Answers("/data/app.db")
        found = answers.entry("k")          # (value, until) or None: ask SQLite
        if found is None:
            token = answers.begin()
            entry = store.read("k")
            answers.put(token, "k", entry)
    """

    def __init__(
        self,
        path: str,
        *,
        max_entries: int = 10_000,
        max_bytes: int = 8 << 20,
        max_value: int = 4096,
    ) -> None:
        self.path = path
        self.max_entries, self.max_bytes, self.max_value = max_entries, max_bytes, max_value
        self._lock = threading.Lock()
        self._watch: WalWatch | None = None
        self._tries = 0
        self._state = _OFF
        on_fork(self)

    # the hits: no lock (one read of ``_state`` gives a header and its answers together)

    def entry(self, key: Any) -> tuple[Any, float | None] | None:
        """``(value, until)`` of ``key`` (value: the encoded bytes, ``MISSING`` or
        ``PRESENT``), or ``None``: not known for the current header, ask SQLite."""
        s = self._state
        if s.stamp is None or s.view[:_SPAN] != s.stamp:
            return None
        found = s.entries.get(key)
        if found is None or (found[1] is not None and found[1] <= time.time()):
            return None
        return found

    def count(self) -> int | None:
        """The cached ``len``, or ``None``: ask SQLite."""
        s = self._state
        if s.count is None or s.view[:_SPAN] != s.stamp:
            return None
        if s.count_until is not None and s.count_until <= time.time():
            return None
        return s.count

    # the fills

    def begin(self) -> _State | None:
        """Read the header before the query; the token for :meth:`put` (``None``: do not
        cache this answer)."""
        watch = self._watch
        if watch is None:
            if self._tries >= ATTEMPTS:
                return None
            self._tries += 1
            watch = self._watch = watch_for(self.path)
            if watch is None:
                return None
        stamp = watch.view[:_SPAN]
        s = self._state
        if s.stamp == stamp:  # checked when it was first seen; put() checks it is current
            return s
        if not consistent(stamp):
            return None
        with self._lock:
            s = self._state
            if s.stamp != stamp:
                s = self._state = _State(watch.view, stamp)
            return s

    def put(self, token: _State | None, key: str, entry: Any) -> None:
        """Keep the answer ``entry`` (a stash entry or ``None``) read after ``begin``."""
        if token is None:
            return
        if entry is None:
            value: Any = MISSING
            until = None
        else:
            value = entry.value if len(entry.value) <= self.max_value else PRESENT
            until = None if entry.expires_at is None else entry.expires_at.timestamp()
        size = len(value) if type(value) is bytes else 0
        with self._lock:
            if token is not self._state:
                return  # a newer header, or a write of ours, since the read began
            entries = token.entries
            old = entries.pop(key, None)
            if old is not None and type(old[0]) is bytes:
                token.size -= len(old[0])
            while entries and (
                len(entries) >= self.max_entries or token.size + size > self.max_bytes
            ):
                gone = entries.pop(next(iter(entries)))
                if type(gone[0]) is bytes:
                    token.size -= len(gone[0])
            if size <= self.max_bytes and self.max_entries > 0:
                entries[key] = (value, until)
                token.size += size

    def put_count(self, token: _State | None, n: int, until: float | None) -> None:
        """Keep ``len`` (``until``: the earliest expiry among what it counted)."""
        if token is None:
            return
        with self._lock:
            if token is self._state:
                token.count, token.count_until = n, until

    def forget(self) -> None:
        """After a write of ours: drop every answer (a fill under way keeps nothing)."""
        with self._lock:
            self._state = _OFF

    def forget_watch(self) -> None:
        """In a forked child: the parent's watch is not this process's."""
        self._state = _OFF
        self._watch = None
        self._tries = 0


def answers_for(database: Any, max_entries: int) -> Answers | None:
    """The answer cache for a stash on ``database``: a SQLite file only (a memory database
    has no other writer to miss, but no ``-shm`` either), ``None`` otherwise."""
    if max_entries <= 0:
        return None
    url = getattr(database, "sql_url", None)
    dialect = getattr(getattr(database, "dialect", None), "name", None)
    path = getattr(url, "path", None)
    if dialect != "sqlite" or not isinstance(path, str) or getattr(url, "memory", False):
        return None
    return Answers(os.path.abspath(path), max_entries=max_entries)
