"""Stashes over a dict and over a directory (async).

The sync twin ``persisty/stash/_sync/backing.py`` is generated from this file by
``scripts/generate_sync.py``; edit this file, never the twin.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import msgspec

from persisty.errors import ValidationError
from persisty.stash._async.base import AsyncStash
from persisty.stash._codec import MISSING, Codec, check_key, filename_to_key, key_to_filename


class AsyncDictionaryStash(AsyncStash):
    """A stash over a ``dict`` (``data``), in this process; any hashable key.

    Example::

        stash = AsyncDictionaryStash()
        await stash.dump("a", 1)
        stash.data          # {"a": 1}
    """

    def __init__(self, data: dict[Any, Any] | None = None) -> None:
        self._data: dict[Any, Any] = {} if data is None else data
        self._lock = threading.Lock()

    @property
    def data(self) -> dict[Any, Any]:
        """The backing dict."""
        return self._data

    async def load(self, key: Any) -> Any:
        return self._data.get(key)

    async def _lookup(self, key: Any) -> Any:
        return self._data.get(key, MISSING)

    async def get(self, key: Any, default: Any = None) -> Any:
        return self._data.get(key, default)

    async def exists(self, key: Any) -> bool:
        return key in self._data

    async def dump(self, key: Any, value: Any) -> None:
        self._data[key] = value

    async def dump_all(self, pairs: Iterable[tuple[Any, Any]]) -> None:
        staged = dict(pairs)  # a failing iterable leaves the dict as it was
        with self._lock:
            self._data.update(staged)

    async def add(self, key: Any, value: Any) -> bool:
        with self._lock:
            if key in self._data:
                return False
            self._data[key] = value
            return True

    async def delete(self, key: Any) -> None:
        self._data.pop(key, None)

    async def keys(self, prefix: str | None = None) -> Iterable[Any]:
        if prefix is None:
            return self._data.keys()
        return [k for k in list(self._data) if isinstance(k, str) and k.startswith(prefix)]

    async def count(self) -> int:
        return len(self._data)

    async def clear(self) -> None:
        self._data.clear()


_JOURNAL = ".journal-"


class AsyncDirectoryStash(AsyncStash):
    """One file per key in ``path``, named by ``pattern`` (``"{name}.dat"``).

    Keys are percent-encoded into file names, so no key (``"../x"``, ``"a/b"``) can name a
    file outside the directory. Every write goes to a temporary file that is fsynced and
    renamed over the target, so a crash leaves the old value or the new one, never a part;
    ``dump_all`` journals its renames so a crash in the middle is completed by the next
    stash opened on the directory. Reads create nothing (not even the directory). Values
    are msgspec JSON by default (``codec="msgpack"``; ``codec="pickle"`` signs each file
    with ``secret`` or ``PERSISTY_SECRET``).

    Example::

        stash = AsyncDirectoryStash(Path("cache"), codec="msgpack")
        await stash.dump("report/2024", {"rows": 3})     # cache/report%2F2024.dat
    """

    def __init__(
        self,
        path: Path | str,
        pattern: str = "{name}.dat",
        *,
        codec: str = "json",
        secret: bytes | str | None = None,
    ) -> None:
        if pattern.count("{name}") != 1 or "/" in pattern or os.sep in pattern:
            raise ValidationError(
                "pattern is a file name with {name} once, e.g. '{name}.dat'", field="pattern"
            )
        self.path = Path(path)
        self.pattern = pattern
        self._prefix, self._suffix = pattern.split("{name}")
        self.codec = Codec(codec, secret=secret)
        self._recover()

    # ---- files ---------------------------------------------------------------------------

    def key_to_path(self, key: Any) -> Path:
        """The file that holds ``key`` (inside ``path`` whatever the key)."""
        return self.path / (self._prefix + key_to_filename(check_key(key)) + self._suffix)

    def _key_of(self, name: str) -> str | None:
        if not (name.startswith(self._prefix) and name.endswith(self._suffix)):
            return None
        inner = name[len(self._prefix) : len(name) - len(self._suffix)]
        if not inner or inner.startswith("."):
            return None  # temporary files and journals start with "."
        return filename_to_key(inner)

    def _write_temp(self, data: bytes) -> Path:
        self.path.mkdir(parents=True, exist_ok=True)
        tmp = self.path / f".{uuid.uuid4().hex}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return tmp

    def _sync_dir(self) -> None:
        fd = os.open(self.path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def _recover(self) -> None:
        """Finish the renames of a ``dump_all`` that a crash interrupted."""
        if not self.path.is_dir():
            return
        for journal in self.path.glob(_JOURNAL + "*"):
            try:
                moves = msgspec.json.decode(journal.read_bytes(), type=list[tuple[str, str]])
            except (FileNotFoundError, msgspec.DecodeError):
                continue  # finished meanwhile, or a journal that was never complete
            for tmp, final in moves:
                with contextlib.suppress(FileNotFoundError):
                    os.replace(self.path / tmp, self.path / final)
            journal.unlink(missing_ok=True)
        for stale in self.path.glob(".*.tmp"):  # values no journal refers to: never visible
            with contextlib.suppress(OSError):
                if stale.stat().st_mtime < time.time() - 3600:
                    stale.unlink()

    # ---- the stash -----------------------------------------------------------------------

    async def load(self, key: Any) -> Any:
        value = await self._lookup(key)
        return None if value is MISSING else value

    async def _lookup(self, key: Any) -> Any:
        try:
            data = self.key_to_path(key).read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            return MISSING
        return self.codec.decode(data)

    async def exists(self, key: Any) -> bool:
        return self.key_to_path(key).is_file()

    async def dump(self, key: Any, value: Any) -> None:
        target = self.key_to_path(key)
        data = self.codec.encode(value)  # an unencodable value writes nothing
        tmp = self._write_temp(data)
        os.replace(tmp, target)
        self._sync_dir()

    async def dump_all(self, pairs: Iterable[tuple[Any, Any]]) -> None:
        staged = [(self.key_to_path(k), self.codec.encode(v)) for k, v in pairs]
        if not staged:
            return
        moves = [(self._write_temp(data).name, target.name) for target, data in staged]
        journal = self.path / f"{_JOURNAL}{uuid.uuid4().hex}"
        tmp = self._write_temp(msgspec.json.encode(moves))
        os.replace(tmp, journal)
        self._sync_dir()  # from here on the batch is decided: recovery finishes it
        for name, final in moves:
            with contextlib.suppress(FileNotFoundError):  # another opener finished it
                os.replace(self.path / name, self.path / final)
        self._sync_dir()
        journal.unlink(missing_ok=True)

    async def add(self, key: Any, value: Any) -> bool:
        target = self.key_to_path(key)
        tmp = self._write_temp(self.codec.encode(value))
        try:
            os.link(tmp, target)  # atomic, and fails if the target exists
        except FileExistsError:
            return False
        finally:
            tmp.unlink(missing_ok=True)
        self._sync_dir()
        return True

    async def delete(self, key: Any) -> None:
        with contextlib.suppress(FileNotFoundError, NotADirectoryError):
            self.key_to_path(key).unlink()

    async def keys(self, prefix: str | None = None) -> Iterable[Any]:
        if not self.path.is_dir():
            return []
        found = []
        for entry in os.scandir(self.path):
            key = self._key_of(entry.name)
            if key is not None and (prefix is None or key.startswith(prefix)):
                found.append(key)
        return found

    async def count(self) -> int:
        return len(list(await self.keys()))

    async def clear(self) -> None:
        for key in list(await self.keys()):
            await self.delete(key)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r}, {self.pattern!r})"
