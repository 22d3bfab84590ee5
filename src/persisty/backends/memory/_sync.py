# Generated from src/persisty/backends/memory/_async.py by scripts/generate_sync.py - do not edit.
"""The in-memory backend (``memory://``): items live in this process, nothing is persisted."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from persisty.backends.memory._table import MemoryTable, Row
from persisty.errors import PersistyError
from persisty.model import StoreMeta
from persisty.query import Filter, PageKeys, Sort
from persisty.store import Database, Key, Store, StoreBase, WriteOp


class MemoryStore(StoreBase[Any]):
    """A Store over a :class:`MemoryTable`; every filter runs natively (in Python), with
    declared indexes used for equality and range lookups."""

    def __init__(self, meta: StoreMeta, pages: PageKeys, table: MemoryTable) -> None:
        super().__init__(meta, pages)
        self.table = table

    def _get(self, key: Key) -> Row | None:
        return self.table.get(key)

    def _get_many(self, keys: Sequence[Key]) -> list[Row | None]:
        return [self.table.get(k) for k in keys]

    def _commit(self, ops: Sequence[WriteOp], atomic: bool) -> list[PersistyError | None]:
        return self.table.commit(ops, atomic)

    def _find(self, native: Filter, spec: Sort, after: Sequence[Any] | None,
                    limit: int | None) -> list[Any]:
        return self.table.find(native, spec, after, limit)

    def _count(self, native: Filter) -> int:
        return self.table.count(native)

    def _next_sequence(self, attr: str) -> int:
        return self.table.next_sequence(attr)

    def _describe(self, native: Filter, spec: Sort) -> str:
        used = [a for a in self.table.eq if a in repr(native)]
        how = f"index on {', '.join(used)}" if used else "scan"
        return f"memory {how}; filter {native!r} evaluated in process"


class MemoryDatabase(Database):
    """``memory://``: a fresh, empty database per ``connect()``; namespaces are separate
    tables in it.

    Example::

        db = persisty.aio.connect("memory://")
        notes = db.store(Note)
    """

    def __init__(self, url: str = "memory://", *, namespace: str | None = None,
                 secret: bytes | str | None = None) -> None:
        super().__init__(url, namespace=namespace, secret=secret)
        self._tables: dict[str, MemoryTable] = {}

    def _open(self, meta: StoreMeta) -> Store[Any]:
        table = self._tables.setdefault(meta.name, MemoryTable(meta))
        return MemoryStore(meta, self.pages, table)
