"""The Store of a runtime-defined type: every call goes to the store of the definition's
current version (so an additive ``alter`` is followed at once); writes are refused while a
destructive migration copies (``Unavailable``) and after it (``Conflict``: the store was
opened for the data generation the migration replaced)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from persisty.dynamic._classes import USER_NAMES, user_facing
from persisty.errors import Conflict, NotFound, Unavailable
from persisty.model import StoreMeta
from persisty.query import Filter, Order
from persisty.store import AsyncStore, AsyncWrappedStore, Edit, EditResult, Explain, Page

if TYPE_CHECKING:
    from persisty.dynamic._async.catalog import AsyncCatalog, AsyncEntry

OrderArg = Iterable[Order | str] | Order | str | None


class AsyncDynamicStore(AsyncWrappedStore[Any]):
    """A Store (see :class:`persisty.store.AsyncStore`) over the data generation it was
    opened for; ``catalog.store(name)`` gives one.

    Example::

        from persisty.dynamic import catalog

        cat = catalog(db)
        await cat.define({"name": "contacts", "key": "email", "attrs": {"email": "str"}})
        contacts = await cat.store("contacts")
        await contacts.create({"email": "ann@example.com"})
    """

    def __init__(self, catalog: AsyncCatalog, entry: AsyncEntry) -> None:
        super().__init__(entry.store)
        self.catalog = catalog
        self.name = entry.definition.name
        self.epoch = entry.definition.epoch
        self._shown = entry.meta
        self._named = USER_NAMES

    @property
    def meta(self) -> StoreMeta:
        """The metadata of the definition's current version (of this generation), named
        as the user's store."""
        return self._shown

    @meta.setter
    def meta(self, value: StoreMeta) -> None:  # the base class sets it once
        pass

    async def _entry(self) -> AsyncEntry:
        entry = await self.catalog._entry(self.name)
        if entry is None or entry.definition.state == "dropped":
            raise NotFound(f"there is no store {self.name!r}", field="name")
        return entry

    async def _reader(self) -> AsyncStore[Any]:
        entry = await self._entry()
        if entry.definition.epoch == self.epoch:
            self.inner, self._shown = entry.store, entry.meta
        return self.inner

    async def _writer(self) -> AsyncStore[Any]:
        entry = await self._entry()
        d = entry.definition
        if d.epoch != self.epoch:
            raise Conflict(
                f"{self.name} was migrated to version {d.version}: this store was "
                "opened for an older version; open it again"
            )
        if d.state == "fenced":
            raise Unavailable(f"{self.name} is being migrated: writes resume when the copy is done")
        self.inner, self._shown = entry.store, entry.meta
        return entry.store

    def _item(self, item: Any) -> Any:
        """Instances of another version's class are taken as their values."""
        if isinstance(item, Mapping) or type(item) is self.inner.meta.cls:
            return item
        meta = getattr(type(item), "__persisty__", None)
        if isinstance(meta, StoreMeta):
            return meta.to_builtins(item)
        return item

    async def create(self, item: Any) -> Any:
        with self._named:
            store = await self._writer()
            return await store.create(self._item(item))

    async def read(self, key: str) -> Any:
        with self._named:
            return await (await self._reader()).read(key)

    async def update(
        self, item: Any, *, if_match: str | None = None, precondition: Filter | None = None
    ) -> Any:
        with self._named:
            store = await self._writer()
            item = self._item(item)
            if isinstance(item, Mapping):
                item = store.meta.from_builtins(item)
            return await store.update(item, if_match=if_match, precondition=precondition)

    async def put(self, item: Any, *, if_match: str | None = None) -> Any:
        with self._named:
            store = await self._writer()
            item = self._item(item)
            if isinstance(item, Mapping):
                item = store.meta.from_builtins(item)
            return await store.put(item, if_match=if_match)

    async def patch(
        self,
        key: str,
        changes: Mapping[str, Any],
        *,
        if_match: str | None = None,
        precondition: Filter | None = None,
    ) -> Any:
        with self._named:
            store = await self._writer()
            return await store.patch(key, changes, if_match=if_match, precondition=precondition)

    async def delete(
        self, key: str, *, if_match: str | None = None, precondition: Filter | None = None
    ) -> None:
        with self._named:
            store = await self._writer()
            await store.delete(key, if_match=if_match, precondition=precondition)

    async def search(
        self,
        filter: Filter | None = None,
        order: OrderArg = None,
        limit: int | None = None,
        page_key: str | None = None,
    ) -> Page[Any]:
        with self._named:
            return await (await self._reader()).search(filter, order, limit, page_key)

    async def count(self, filter: Filter | None = None) -> int:
        with self._named:
            return await (await self._reader()).count(filter)

    async def read_batch(self, keys: Sequence[str]) -> list[Any]:
        with self._named:
            return await (await self._reader()).read_batch(keys)

    async def edit_batch(self, edits: Sequence[Edit], atomic: bool = True) -> list[EditResult[Any]]:
        with self._named:
            store = await self._writer()
            fixed = [
                dataclasses.replace(e, item=self._item(e.item))
                if e.item is not None
                and not isinstance(e.item, Mapping)
                and type(e.item) is not store.meta.cls
                else e
                for e in edits
            ]
            results = await store.edit_batch(fixed, atomic)
            return [
                dataclasses.replace(r, message=user_facing(r.message))
                if r.message is not None and "__g" in r.message
                else r
                for r in results
            ]

    async def update_all(self, filter: Filter | None, changes: Mapping[str, Any]) -> int:
        with self._named:
            return await (await self._writer()).update_all(filter, changes)

    async def delete_all(self, filter: Filter | None) -> int:
        with self._named:
            return await (await self._writer()).delete_all(filter)

    async def explain(self, filter: Filter | None = None, order: OrderArg = None) -> Explain:
        with self._named:
            return await (await self._reader()).explain(filter, order)

    async def purge_expired(self, limit: int | None = None) -> int:
        with self._named:
            return await (await self._writer()).purge_expired(limit)
