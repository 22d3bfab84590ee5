"""The directory backend (``file:///path``): one JSON document per item, crash-safe writes."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from persisty.backends.directory._files import DirectoryTable, Row, read_or_create_secret
from persisty.backends.directory._shared import commit_tables
from persisty.errors import PersistyError, ValidationError
from persisty.model import StoreMeta, meta_of
from persisty.query import Filter, PageKeys, Sort
from persisty.store import AsyncDatabase, AsyncStore, AsyncStoreBase, Key, WriteOp


class AsyncDirectoryStore(AsyncStoreBase[Any]):
    """A Store over a :class:`DirectoryTable`; searches scan the directory and filter in
    Python, so this backend suits small data sets, fixtures and local tools."""

    def __init__(self, meta: StoreMeta, pages: PageKeys, table: DirectoryTable) -> None:
        super().__init__(meta, pages)
        self.table = table

    async def _get(self, key: Key) -> Row | None:
        return self.table.get(key)

    async def _get_many(self, keys: Sequence[Key]) -> list[Row | None]:
        return self.table.get_many(keys)

    async def _count(self, native: Filter) -> int:
        return self.table.count(native)

    async def _commit(self, ops: Sequence[WriteOp], atomic: bool) -> list[PersistyError | None]:
        return self.table.commit(ops, atomic)

    async def _find(
        self, native: Filter, spec: Sort, after: Sequence[Any] | None, limit: int | None
    ) -> list[Any]:
        return self.table.find(native, spec, after, limit)

    async def _next_sequence(self, attr: str) -> int:
        return self.table.next_sequence(attr)

    async def _skip_sequence(self, attr: str, by: int) -> None:
        self.table.skip_sequence(attr, by)

    def _describe(self, native: Filter, spec: Sort) -> str:
        return f"scan of {self.table.path}; filter {native!r} evaluated in process"


class AsyncDirectoryDatabase(AsyncDatabase):
    """``file:///path/to/dir``: items as JSON files under ``dir/<namespace>/<store>/``.

    Example::

        db = persisty.aio.connect("file:///var/lib/myapp/data")
        notes = db.store(Note)
    """

    def __init__(
        self, url: str, *, namespace: str | None = None, secret: bytes | str | None = None
    ) -> None:
        parts = urlsplit(url)
        path = unquote(parts.netloc + parts.path)
        if not path:
            raise ValidationError("file:// needs a directory, e.g. file:///var/data", field="url")
        self.root = Path(path)
        super().__init__(url, namespace=namespace, secret=secret)

    def _secret(self) -> bytes | None:
        # opening creates nothing: without the directory, this process signs page keys
        # with a random secret until it is reopened
        if not self.root.is_dir():
            return None
        return read_or_create_secret(self.root)

    @property
    def folder(self) -> Path:
        """The directory of this database's namespace."""
        return self.root / (self.namespace or "_default")

    def _open(self, meta: StoreMeta) -> AsyncStore[Any]:
        return AsyncDirectoryStore(meta, self.pages, DirectoryTable(meta, self.folder / meta.name))

    async def _commit_stores(
        self, groups: list[tuple[AsyncStoreBase[Any], list[WriteOp]]]
    ) -> list[list[PersistyError | None]]:
        parts = []
        for store, ops in groups:
            assert isinstance(store, AsyncDirectoryStore)
            parts.append((store.table, ops))
        return commit_tables(self.folder, parts)

    async def drop(self, cls: type[Any] | None = None) -> None:
        """Delete the directory of the store of ``cls`` (without ``cls``, the namespace's
        directory with every store in it).

        Example::

            await db.drop(Note)
        """
        if cls is not None:
            store = self.store(cls)
            assert isinstance(store, AsyncDirectoryStore)
            store.table.drop()
            return
        for store in self._stores.values():
            if isinstance(store, AsyncDirectoryStore):
                store.table.drop()
        if self.folder.is_dir():
            for child in sorted(self.folder.iterdir()):
                if child.is_dir():
                    DirectoryTable.drop_path(child)
            with contextlib.suppress(OSError):
                self.folder.rmdir()

    async def footprint(self, cls: type[Any] | None = None) -> list[str]:
        """The files and directories of the store of ``cls`` (else of the namespace)."""
        top = self.folder / meta_of(cls).name if cls is not None else self.folder
        if not top.exists():
            return []
        return [str(top), *sorted(str(p) for p in top.rglob("*"))]
