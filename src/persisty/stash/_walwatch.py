"""Noticing every commit to a SQLite file in WAL mode without asking SQLite (plain code).

In WAL mode SQLite keeps the WAL-index header in ``<db>-shm``, a file every connection
maps (https://www.sqlite.org/walformat.html, "WAL-Index Format"): two copies of a 48-byte
header at offsets 0 and 48, in native byte order. Every commit rewrites it (``iChange``,
``mxFrame``, the frame checksum and the header checksum change), and so does every WAL
restart (new salts); a writer writes the second copy first and the first copy last, so two
equal copies are one consistent header, and unequal copies are a writer mid-update. A
reader of SQLite finds the commits through that header alone, so a commit no reader can
yet see has not changed it, and a commit any reader can see has.

:func:`watch_for` maps the header read-only (``mmap``) and :meth:`WalWatch.header` copies
the 96 bytes: well under a microsecond, no system call. For that mapping to stay the live
header, each process keeps, per database file, one connection of its own open for good (a
*keeper*): while a connection has the WAL open it holds a shared lock on the database
file and on the ``-shm`` file, so no other process can leave WAL mode (that takes an
exclusive lock), delete the ``-shm`` file or reinitialise it (only the last connection
does). The file descriptor of the ``-shm`` file is never closed either: closing any
descriptor of a file drops every POSIX lock the process holds on it, including those of
SQLite's own connections. So a watch is per process and per file, kept until the process
ends; a forked child opens its own (its parent's locks are not inherited).
"""

from __future__ import annotations

import contextlib
import mmap
import os
import sqlite3
import struct
import threading
import weakref
from typing import Any

HEADER = 48
MAX_WATCHES = 256  # files watched per process (each: a connection and two descriptors)
VERSION = struct.pack("=I", 3007000)  # iVersion of the WAL-index header
_LOCK = threading.Lock()
_WATCHES: dict[str, WalWatch] = {}
_LIVE: weakref.WeakSet[Any] = weakref.WeakSet()  # whatever must forget its watch on fork
_INHERITED: list[WalWatch] = []  # a parent's watches in a forked child: never closed


class WalWatch:
    """The WAL-index header of one SQLite file, mapped read-only, and the keeper that keeps
    it live. ``header()`` is the 96 bytes of both copies; :func:`consistent` says whether
    they are one header SQLite wrote completely.

    Example::

        watch = watch_for("/data/app.db")
        before = watch.header() if watch else None   # then query; compare next time
    """

    __slots__ = ("_fd", "_keeper", "ident", "path", "pid", "view")

    def __init__(self, path: str, keeper: sqlite3.Connection, fd: int, view: mmap.mmap) -> None:
        self.path, self._keeper, self._fd, self.view = path, keeper, fd, view
        self.ident = os.fstat(fd)[1:3]  # (inode, device) of the -shm file
        self.pid = os.getpid()

    def header(self) -> bytes:
        """Both copies of the header, as SQLite left them at this instant."""
        return self.view[: 2 * HEADER]


def consistent(stamp: bytes) -> bool:
    """Whether ``stamp`` (:meth:`WalWatch.header`) is one complete, initialised header: the
    two copies equal, the version SQLite writes, ``isInit`` set."""
    return (
        len(stamp) == 2 * HEADER
        and stamp[:HEADER] == stamp[HEADER:]
        and stamp[:4] == VERSION
        and stamp[12] == 1
    )


def _open(path: str) -> WalWatch | None:
    try:
        keeper = sqlite3.connect(
            f"file:{path}?mode=rw", uri=True, isolation_level=None, check_same_thread=False
        )
    except sqlite3.Error:
        return None
    try:
        mode = keeper.execute("PRAGMA journal_mode").fetchone()[0]
        keeper.execute("SELECT count(*) FROM sqlite_master").fetchone()  # opens the WAL
    except sqlite3.Error:
        mode = None
    if mode != "wal":
        keeper.close()  # SQLite closes its own descriptors safely
        return None
    try:
        fd = os.open(path + "-shm", os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        keeper.close()
        return None
    try:
        if os.fstat(fd).st_size < 2 * HEADER:
            raise ValueError("short -shm file")
        view = mmap.mmap(fd, 2 * HEADER, mmap.MAP_SHARED, mmap.PROT_READ)
    except (OSError, ValueError):
        # never closed: closing it would drop the keeper's locks on the -shm file
        return None
    return WalWatch(path, keeper, fd, view)


def watch_for(path: str) -> WalWatch | None:
    """This process's watch of the SQLite file ``path`` (opened on first use, kept until
    the process ends), or ``None`` when it cannot be had: no such file, not in WAL mode,
    no ``-shm`` file (another VFS, or exclusive locking), or ``MAX_WATCHES`` files watched
    already. The caller then asks SQLite."""
    real = os.path.realpath(path)  # SQLite resolves symbolic links the same way
    with _LOCK:
        found = _WATCHES.get(real)
        if found is not None and found.pid == os.getpid() and _same_file(found):
            return found
        if len(_WATCHES) >= MAX_WATCHES:
            return None  # bounded: the stashes of further files ask SQLite every time
        made = _open(real)
        if made is not None:
            _WATCHES[real] = made  # an earlier one (another file at that path) stays open
        return made


def _same_file(watch: WalWatch) -> bool:
    """Whether the ``-shm`` file at the watch's path is still the one it maps."""
    try:
        return os.stat(watch.path + "-shm")[1:3] == watch.ident
    except OSError:
        return False


def on_fork(holder: Any) -> None:
    """Call ``holder.forget_watch()`` in a forked child (whose watches are its parent's)."""
    _LIVE.add(holder)


def _after_fork_in_child() -> None:
    # the parent's keepers hold no lock for the child: open anew; the inherited ones are
    # kept, as closing their descriptors or connections in the child is no business of it
    _INHERITED.extend(_WATCHES.values())
    _WATCHES.clear()
    for holder in list(_LIVE):
        with contextlib.suppress(Exception):
            holder.forget_watch()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
