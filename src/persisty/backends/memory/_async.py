"""The in-memory backend (``memory://``): items live in this process, nothing is persisted."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from persisty.backends.memory._table import MemoryTable, Row, commit_tables
from persisty.errors import PersistyError
from persisty.model import StoreMeta, meta_of
from persisty.query import Filter, PageKeys, Sort
from persisty.store import AsyncDatabase, AsyncStore, AsyncStoreBase, Key, WriteOp


class AsyncMemoryStore(AsyncStoreBase[Any]):
    """A Store over a :class:`MemoryTable`; every filter runs natively (in Python), with
    declared indexes used for equality, range and ordered lookups and counts."""

    def __init__(self, meta: StoreMeta, pages: PageKeys, table: MemoryTable) -> None:
        super().__init__(meta, pages)
        self.table = table

    async def _get(self, key: Key) -> Row | None:
        return self.table.get(key)

    async def _get_many(self, keys: Sequence[Key]) -> list[Row | None]:
        return [self.table.get(k) for k in keys]

    async def _commit(self, ops: Sequence[WriteOp], atomic: bool) -> list[PersistyError | None]:
        return self.table.commit(ops, atomic)

    async def _find(
        self, native: Filter, spec: Sort, after: Sequence[Any] | None, limit: int | None
    ) -> list[Any]:
        return self.table.find(native, spec, after, limit)

    async def _count(self, native: Filter) -> int:
        return self.table.count(native)

    async def _next_sequence(self, attr: str) -> int:
        return self.table.next_sequence(attr)

    async def _skip_sequence(self, attr: str, by: int) -> None:
        self.table.skip_sequence(attr, by)

    def _describe(self, native: Filter, spec: Sort) -> str:
        return self.table.describe(native, spec)


class AsyncMemoryDatabase(AsyncDatabase):
    """``memory://``: a fresh, empty database per ``connect()``; namespaces are separate
    tables in it.

    Example::

        db = persisty.aio.connect("memory://")
        notes = db.store(Note)
    """

    def __init__(
        self,
        url: str = "memory://",
        *,
        namespace: str | None = None,
        secret: bytes | str | None = None,
    ) -> None:
        super().__init__(url, namespace=namespace, secret=secret)
        self._tables: dict[str, MemoryTable] = {}

    def _open(self, meta: StoreMeta) -> AsyncStore[Any]:
        table = self._tables.get(meta.name)
        if table is None:
            table = self._tables[meta.name] = MemoryTable(meta)
        elif table.meta.cls is not meta.cls:
            table.adopt(meta)  # a new version of the class: its stores share the items
        return AsyncMemoryStore(meta, self.pages, table)

    async def _commit_stores(
        self, groups: list[tuple[AsyncStoreBase[Any], list[WriteOp]]]
    ) -> list[list[PersistyError | None]]:
        parts = []
        for store, ops in groups:
            assert isinstance(store, AsyncMemoryStore)
            parts.append((store.table, ops))
        return commit_tables(parts)

    async def drop(self, cls: type[Any] | None = None) -> None:
        """Forget the items, indexes and counters of the store of ``cls`` (of every store
        without ``cls``).

        Example::

            await db.drop(Note)
        """
        names = [meta_of(cls).name] if cls is not None else list(self._tables)
        for name in names:
            table = self._tables.get(name)
            if table is not None:
                table.clear()

    async def footprint(self, cls: type[Any] | None = None) -> list[str]:
        """The stores (of ``cls``, else every one) holding items or sequence counters."""
        names = [meta_of(cls).name] if cls is not None else list(self._tables)
        found = []
        for name in names:
            table = self._tables.get(name)
            if table is not None and (table.rows or table.sequences):
                found.append(f"{name}: {len(table.rows)} item(s), counters {table.sequences}")
        return found
