"""Commits over several stores of one directory database, all or nothing across a crash.

Under every store's writer lock (taken in path order), each store's changes are checked and
written to its ``.journal-shared`` (fsynced) naming a marker file in the database's
``.commits`` folder; writing the marker is the commit point. Then each store applies its
journal, the journals are removed, and the marker last. A reader that finds a shared journal
replays it when its marker exists (the commit happened) and discards it otherwise (the
writer died before committing), so the other stores of that commit agree with it.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from persisty.errors import PersistyError
from persisty.store import WriteOp

if TYPE_CHECKING:
    from persisty.backends.directory._files import DirectoryTable


class _Shared(msgspec.Struct):
    marker: str
    entries: list[Any]


def _fsync(path: Path, content: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(content)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def replay_shared(table: DirectoryTable, entry: type[Any]) -> None:
    """Finish (or discard) a shared commit ``table`` took part in (under its writer lock)."""
    journal = table.path / ".journal-shared"
    if not journal.exists():
        return
    try:
        shared = msgspec.json.decode(journal.read_bytes(), type=_Shared)
    except msgspec.DecodeError:
        journal.unlink()  # torn while being written: not committed
        return
    if Path(shared.marker).exists():
        table._apply(msgspec.convert(shared.entries, list[entry]))  # type: ignore[valid-type]
    journal.unlink()


def commit_tables(
    root: Path, parts: Sequence[tuple[DirectoryTable, Sequence[WriteOp]]]
) -> list[list[PersistyError | None]]:
    """Apply each table's ops, all or nothing across the tables."""
    if len(parts) == 1:
        table, ops = parts[0]
        return [table.commit(ops, True)]
    order = sorted(range(len(parts)), key=lambda i: str(parts[i][0].path))
    errors: list[list[PersistyError | None]] = [[None] * len(ops) for _, ops in parts]
    with contextlib.ExitStack() as locks:
        for i in order:
            locks.enter_context(parts[i][0]._locked())
            parts[i][0]._replay()
        planned: list[list[Any]] = []
        for n, (table, ops) in enumerate(parts):
            pending: dict[str, Any] = {}
            entries = []
            for j, op in enumerate(ops):
                try:
                    entries.append(table._check(op, pending))
                except PersistyError as e:
                    errors[n][j] = e
                    return errors
            planned.append(entries)
        commits = root / ".commits"
        commits.mkdir(parents=True, exist_ok=True)
        marker = commits / secrets.token_hex(16)
        for (table, _), entries in zip(parts, planned, strict=True):
            _fsync(
                table.path / ".journal-shared", msgspec.json.encode(_Shared(str(marker), entries))
            )
        _fsync(marker, b"1")  # the commit point
        for (table, _), entries in zip(parts, planned, strict=True):
            table._apply(entries)
            (table.path / ".journal-shared").unlink()
        marker.unlink()
        with contextlib.suppress(OSError):
            commits.rmdir()  # when no other commit is under way
    return errors
