"""One JSON document per item in a directory, written atomically (write, fsync, rename).

Layout: ``<root>/<namespace>/<store>/<hash of key>.json`` holding ``{"key", "etag",
"item"}``. Writers take an exclusive ``flock`` on the store's ``.lock`` so conditional writes
are atomic across processes; a batch is first written to ``.journal`` (fsynced) and then
applied. Readers take a shared ``flock``, so they never see a batch being applied; a journal
a reader finds under its shared lock was left by a writer that died (a live writer holds
the exclusive lock), and the reader replays it before reading. A batch is therefore seen
whole or not at all, while it is applied and after a crash.

The store's directory is created by its first write; reads of a store that was never
written (or was dropped) find nothing and create nothing.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import msgspec

from persisty.backends.directory._shared import replay_shared
from persisty.errors import Conflict, NotFound, PersistyError, PreconditionFailed
from persisty.model import StoreMeta
from persisty.query import ALL, Filter, Sort, compile_filter, seek
from persisty.store import Insert, Key, Remove, Replace, WriteOp

Row = tuple[Any, str]


class _Doc(msgspec.Struct):
    key: str
    etag: str
    item: msgspec.Raw


class _JournalEntry(msgspec.Struct):
    name: str
    content: bytes | None


def _write_atomic(path: Path, content: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(content)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_or_create_secret(root: Path) -> bytes:
    """The page-key secret kept in ``<root>/.secret`` (created once, mode 0600)."""
    path = root / ".secret"
    root.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes()
    with os.fdopen(fd, "wb") as f:
        f.write(secrets.token_bytes(32))
    return path.read_bytes()


class DirectoryTable:
    """The items of one store as files in one directory."""

    def __init__(self, meta: StoreMeta, path: Path) -> None:
        self.meta = meta
        self.path = path
        if (path / ".journal").exists():
            with self._locked():
                self._replay()

    def _file(self, key: Key) -> Path:
        text = self.meta.key_string(key)
        return self.path / (hashlib.blake2b(text.encode(), digest_size=16).hexdigest() + ".json")

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """The exclusive (writer's) lock; creates the store's directory."""
        self.path.mkdir(parents=True, exist_ok=True)
        with open(self.path / ".lock", "a+b") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    @contextlib.contextmanager
    def _reading(self) -> Iterator[bool]:
        """The shared (reader's) lock: no batch is being applied while it is held. A
        journal found under it was left by a writer that died; it is replayed first.

        Yields ``False`` when the store's directory is not there (never written, or
        dropped): the caller then reads nothing, not even what a writer that creates the
        directory meanwhile has half written, since no lock covers that read.
        """
        try:
            lock = open(self.path / ".lock", "a+b")  # noqa: SIM115
        except FileNotFoundError:
            yield False
            return
        with lock:
            fcntl.flock(lock, fcntl.LOCK_SH)
            try:
                if (self.path / ".journal").exists():
                    fcntl.flock(lock, fcntl.LOCK_EX)
                    self._replay()
                yield True
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def drop(self) -> None:
        """Delete the store's directory: items, journal, sequences and lock."""
        self.drop_path(self.path)

    @staticmethod
    def drop_path(path: Path) -> None:
        """Delete a store's directory under its writer's lock."""
        if not path.is_dir():
            return
        with open(path / ".lock", "a+b") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            shutil.rmtree(path, ignore_errors=True)

    def _replay(self) -> None:
        replay_shared(self, _JournalEntry)
        journal = self.path / ".journal"
        if not journal.exists():
            return
        try:
            entries = msgspec.json.decode(journal.read_bytes(), type=list[_JournalEntry])
        except msgspec.DecodeError:
            journal.unlink()  # torn while being written: the batch never started
            return
        self._apply(entries)
        journal.unlink()
        _fsync_dir(self.path)

    def _apply(self, entries: Sequence[_JournalEntry]) -> None:
        for e in entries:
            target = self.path / e.name
            if e.content is None:
                with contextlib.suppress(FileNotFoundError):
                    target.unlink()
            else:
                _write_atomic(target, e.content)

    def next_sequence(self, attr: str) -> int:
        """The next value of the integer sequence ``attr``, kept in ``.sequence-<attr>``."""
        with self._locked():
            path = self.path / f".sequence-{attr}"
            value = int(path.read_text()) + 1 if path.exists() else 1
            _write_atomic(path, str(value).encode())
            return value

    def skip_sequence(self, attr: str, by: int) -> None:
        """Advance the sequence ``attr`` by ``by`` numbers."""
        with self._locked():
            path = self.path / f".sequence-{attr}"
            value = (int(path.read_text()) if path.exists() else 0) + by
            _write_atomic(path, str(value).encode())

    # ---- reads --------------------------------------------------------------------------

    def _load(self, file: Path) -> Row | None:
        try:
            doc = msgspec.json.decode(file.read_bytes(), type=_Doc)
        except FileNotFoundError:
            return None
        return self.meta.decode(doc.item), doc.etag

    def get(self, key: Key) -> Row | None:
        """The item and etag stored under ``key``."""
        with self._reading() as there:
            return self._load(self._file(key)) if there else None

    def get_many(self, keys: Sequence[Key]) -> list[Row | None]:
        """The items and etags stored under ``keys``, read under one lock."""
        with self._reading() as there:
            return [self._load(self._file(k)) if there else None for k in keys]

    def _all(self) -> list[Any]:
        result = []
        for file in self.path.glob("*.json"):
            row = self._load(file)
            if row is not None:
                result.append(row[0])
        return result

    def all(self) -> list[Any]:
        """Every stored item."""
        with self._reading() as there:
            return self._all() if there else []

    def find(
        self, f: Filter, spec: Sort, after: Sequence[Any] | None, limit: int | None
    ) -> list[Any]:
        """Items matching ``f`` in ``spec`` order after ``after`` (a scan of the directory)."""
        items = self.all()
        if f is not ALL:
            keep = compile_filter(f, self.meta)
            items = [i for i in items if keep(i)]
        return seek(items, spec, after, limit)

    def count(self, f: Filter) -> int:
        """How many items match ``f``."""
        items = self.all()
        if f is ALL:
            return len(items)
        keep = compile_filter(f, self.meta)
        return sum(1 for i in items if keep(i))

    # ---- writes -------------------------------------------------------------------------

    def commit(self, ops: Sequence[WriteOp], atomic: bool) -> list[PersistyError | None]:
        """Check and apply ``ops`` under the store's lock; all or nothing when ``atomic``."""
        with self._locked():
            self._replay()
            if not atomic:
                return [self._commit_one(op) for op in ops]
            pending: dict[str, Row | None] = {}
            entries: list[_JournalEntry] = []
            errors: list[PersistyError | None] = []
            for op in ops:
                try:
                    entries.append(self._check(op, pending))
                    errors.append(None)
                except PersistyError as e:
                    errors.append(e)
                    errors.extend([None] * (len(ops) - len(errors)))
                    return errors
            journal = self.path / ".journal"
            _write_atomic(journal, msgspec.json.encode(entries))
            self._apply(entries)
            journal.unlink()
            _fsync_dir(self.path)
            return errors

    def _commit_one(self, op: WriteOp) -> PersistyError | None:
        try:
            entry = self._check(op, {})
        except PersistyError as e:
            return e
        self._apply([entry])
        return None

    def _check(self, op: WriteOp, pending: dict[str, Row | None]) -> _JournalEntry:
        """The file change ``op`` makes, after checking it against stored and pending state."""
        file = self._file(op.key)
        name = file.name
        current = pending[name] if name in pending else self._load(file)
        meta = self.meta
        if isinstance(op, Insert):
            if current is not None:
                raise Conflict(
                    f"{meta.name} {meta.key_string(op.key)!r} already exists",
                    field=meta.key.attrs[0],
                )
        else:
            if current is None:
                raise NotFound(f"no {meta.name} with key {meta.key_string(op.key)!r}")
            if op.expected is not None and current[1] != op.expected:
                raise PreconditionFailed("the item has changed (etag does not match)")
        if isinstance(op, Remove):
            pending[name] = None
            return _JournalEntry(name, None)
        assert isinstance(op, Insert | Replace)
        self._check_unique(op.key, op.item, pending)
        pending[name] = (op.item, op.etag)
        doc = _Doc(meta.key_string(op.key), op.etag, msgspec.Raw(meta.encode(op.item)))
        return _JournalEntry(name, msgspec.json.encode(doc))

    def _check_unique(self, key: Key, item: Any, pending: dict[str, Row | None]) -> None:
        unique = [ix for ix in self.meta.indexes if ix.unique]
        if not unique:
            return
        others: dict[str, Any] = {}
        for file in self.path.glob("*.json"):
            row = self._load(file)
            if row is not None:
                others[file.name] = row[0]
        for name, row in pending.items():
            if row is None:
                others.pop(name, None)
            else:
                others[name] = row[0]
        mine = self._file(key).name
        for ix in unique:
            values = tuple(getattr(item, a) for a in ix.attrs)
            if None in values:
                continue
            for name, other in others.items():
                if name != mine and tuple(getattr(other, a) for a in ix.attrs) == values:
                    raise Conflict(
                        f"{', '.join(ix.attrs)} must be unique: {values!r} is taken",
                        field=ix.attrs[0],
                    )
