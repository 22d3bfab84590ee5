"""``toy://``: a persisty backend in one file, built on the public surface only.

Items live in a dict per store. The base store (``StoreBase`` / ``AsyncStoreBase``) does
validation, generators, etags, preconditions, paging and batches; a backend answers five
hooks: ``_get`` (one item and its etag), ``_commit`` (apply write ops, all or nothing
when asked), ``_find`` (matching items in order after a position), and optionally
``_count`` and ``_next_sequence``.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from persisty.errors import Conflict, NotFound, PersistyError, PreconditionFailed
from persisty.model import StoreMeta
from persisty.query import ALL, Filter, PageKeys, Sort, compile_filter, seek
from persisty.store import (
    AsyncDatabase,
    AsyncStoreBase,
    Database,
    Insert,
    Key,
    Remove,
    StoreBase,
    WriteOp,
)

Row = tuple[Any, str]


class Table:
    """One store's rows; every write holds the lock, so a batch is applied as one step."""

    def __init__(self, meta: StoreMeta) -> None:
        self.meta = meta
        self.rows: dict[Key, Row] = {}
        self.sequences: dict[str, int] = {}
        self.lock = threading.Lock()

    def commit(self, ops: Sequence[WriteOp], atomic: bool) -> list[PersistyError | None]:
        with self.lock:
            before = dict(self.rows)
            errors: list[PersistyError | None] = []
            for op in ops:
                try:
                    self._apply(op)
                    errors.append(None)
                except PersistyError as e:
                    errors.append(e)
                    if atomic:
                        self.rows = before
                        return errors + [None] * (len(ops) - len(errors))
            return errors

    def _apply(self, op: WriteOp) -> None:
        current = self.rows.get(op.key)
        if isinstance(op, Insert):
            if current is not None:
                raise Conflict("the key is taken", field=self.meta.key.attrs[0])
        elif current is None:
            raise NotFound("no item with that key")
        elif op.expected is not None and current[1] != op.expected:
            raise PreconditionFailed("the item has changed (etag does not match)")
        if isinstance(op, Remove):
            del self.rows[op.key]
            return
        for ix in self.meta.indexes:
            if not ix.unique:
                continue
            values = [getattr(op.item, a) for a in ix.attrs]
            if None not in values and any(
                k != op.key and [getattr(i, a) for a in ix.attrs] == values
                for k, (i, _) in self.rows.items()
            ):
                raise Conflict(f"{', '.join(ix.attrs)} must be unique", field=ix.attrs[0])
        self.rows[op.key] = (op.item, op.etag)

    def find(
        self, f: Filter, spec: Sort, after: Sequence[Any] | None, limit: int | None
    ) -> list[Any]:
        with self.lock:
            items = [item for item, _ in self.rows.values()]
        if f is not ALL:
            keep = compile_filter(f, self.meta)
            items = [i for i in items if keep(i)]
        return seek(items, spec, after, limit)

    def next_sequence(self, attr: str) -> int:
        with self.lock:
            self.sequences[attr] = self.sequences.get(attr, 0) + 1
            return self.sequences[attr]


class ToyStore(StoreBase[Any]):
    def __init__(self, meta: StoreMeta, pages: PageKeys, table: Table) -> None:
        super().__init__(meta, pages)
        self.table = table

    def _get(self, key: Key) -> Row | None:
        return self.table.rows.get(key)

    def _commit(self, ops: Sequence[WriteOp], atomic: bool) -> list[PersistyError | None]:
        return self.table.commit(ops, atomic)

    def _find(
        self, native: Filter, spec: Sort, after: Sequence[Any] | None, limit: int | None
    ) -> list[Any]:
        return self.table.find(native, spec, after, limit)

    def _next_sequence(self, attr: str) -> int:
        return self.table.next_sequence(attr)


class AsyncToyStore(AsyncStoreBase[Any]):
    def __init__(self, meta: StoreMeta, pages: PageKeys, table: Table) -> None:
        super().__init__(meta, pages)
        self.table = table

    async def _get(self, key: Key) -> Row | None:
        return self.table.rows.get(key)

    async def _commit(self, ops: Sequence[WriteOp], atomic: bool) -> list[PersistyError | None]:
        return self.table.commit(ops, atomic)

    async def _find(
        self, native: Filter, spec: Sort, after: Sequence[Any] | None, limit: int | None
    ) -> list[Any]:
        return self.table.find(native, spec, after, limit)

    async def _next_sequence(self, attr: str) -> int:
        return self.table.next_sequence(attr)


class ToyDatabase(Database):
    """``toy://``: a fresh, empty database per ``connect()``."""

    def __init__(
        self,
        url: str = "toy://",
        *,
        namespace: str | None = None,
        secret: bytes | str | None = None,
    ) -> None:
        super().__init__(url, namespace=namespace, secret=secret)
        self.tables: dict[str, Table] = {}

    def _open(self, meta: StoreMeta) -> ToyStore:
        return ToyStore(meta, self.pages, self.tables.setdefault(meta.name, Table(meta)))


class AsyncToyDatabase(AsyncDatabase):
    """``toy://`` for asyncio."""

    def __init__(
        self,
        url: str = "toy://",
        *,
        namespace: str | None = None,
        secret: bytes | str | None = None,
    ) -> None:
        super().__init__(url, namespace=namespace, secret=secret)
        self.tables: dict[str, Table] = {}

    def _open(self, meta: StoreMeta) -> AsyncToyStore:
        return AsyncToyStore(meta, self.pages, self.tables.setdefault(meta.name, Table(meta)))


BACKEND = (ToyDatabase, AsyncToyDatabase)
