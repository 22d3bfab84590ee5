"""The sharding layer: big nested parts of an item kept as rows of other stores (the store
and its contract; its reads and commits are in ``_io_async.py``, the pure row logic in
``_rows.py``).

The sync twin ``_sync.py`` is generated from this file by ``scripts/generate_sync.py``;
edit this file, never the twin.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from persisty._retry import attempts, lost_too_often
from persisty.errors import NotFound, PersistyError, ValidationError
from persisty.layers._pinning._async import batched_delete_all, batched_update_all
from persisty.layers.sharded._io_async import AsyncShardIO
from persisty.layers.sharded._model import SHARDED_OF, ShardPath
from persisty.layers.sharded._rows import shard_error
from persisty.model import meta_of
from persisty.query import Filter, Order, paths_of, root_of, validate_filter
from persisty.store import (
    AsyncDatabase,
    AsyncStore,
    Edit,
    EditKind,
    EditResult,
    Explain,
    Page,
    check_changes,
    patched_attrs,
    put_through_async,
    resolve_increments,
    resolve_puts_async,
)

T = TypeVar("T")


class AsyncShardedStore(AsyncShardIO, AsyncStore[T]):
    """A Store whose items keep the nested parts named by ``paths`` in other stores.

    ``inner`` is the store of ``shard_model(cls, paths)`` (opened by a database): its rows
    hold the rest of each item and the etags of its shard rows. Every write is one atomic
    ``db.commit`` over the parent and the shard rows that changed; reads take the parent
    rows, then one ``read_batch`` per shard store, and check each row against its parent
    (a mismatch is read again, then raises ``IntegrityError`` naming the path). Filters
    and order on parent attributes run natively; on a sharded attribute they raise
    ``ValidationError`` naming it.

    Example::

        paths = {"visits[]": "patient_visits"}
        patients = sharded(db.store(shard_model(Patient, paths)), paths)
        await patients.create(Patient(id="p1", visits=[Visit("a"), Visit("b")]))
    """

    inner: AsyncStore[Any]

    def __init__(self, inner: AsyncStore[Any], paths: Mapping[str, str]) -> None:
        outer = getattr(inner.meta.cls, SHARDED_OF, None)
        if outer is None:
            raise ValidationError(
                "sharded() takes the store of shard_model(cls, paths)", field="store"
            )
        shards: list[ShardPath] = inner.meta.cls.__persisty_shards__
        if not isinstance(paths, Mapping) or {p.text: p.name for p in shards} != dict(paths):
            raise ValidationError(
                "paths must be those the shard model was made with", field="paths"
            )
        db = getattr(inner, "opened_by", None)
        if db is None or inner not in db._stores.values():
            raise ValidationError(
                "sharded() takes a store opened by a database (db.store(shard_model(...)))",
                field="store",
            )
        self.inner = inner
        self.meta = meta_of(outer)
        if self.meta.expires is not None:
            raise ValidationError("an expiring item cannot be sharded", field=self.meta.expires)
        self.database: AsyncDatabase = db
        self.shards = shards
        self.stores: dict[str, AsyncStore[Any]] = {p.text: db.store(p.cls) for p in shards}
        self._roots = {p.segments[0] for p in shards}
        self._seen = {}
        self._seen_lock = threading.Lock()
        self._lengths = {}

    # ---- the contract -----------------------------------------------------------------

    async def create(self, item: T) -> T:
        row, children = self._split(self._checked(item))
        r = await self._commit(self._writes(None, row, children, EditKind.CREATE))
        if not r.ok:
            raise shard_error(r)
        self._remember(r.item)
        return self._assemble(r.item, self._by_key(children))  # type: ignore[no-any-return]

    async def read(self, key: str) -> T | None:
        found = await self._current(key)
        return None if found is None else found[1]

    async def update(
        self, item: T, *, if_match: str | None = None, precondition: Filter | None = None
    ) -> T:
        checked = self._checked(item)
        new: T = await self._rewrite(
            self.meta.key_of(checked), lambda _: checked, if_match, precondition
        )
        return new

    async def put(self, item: T, *, if_match: str | None = None) -> T:
        return await put_through_async(self, item, if_match)  # type: ignore[no-any-return]

    async def patch(
        self,
        key: str,
        changes: Mapping[str, Any],
        *,
        if_match: str | None = None,
        precondition: Filter | None = None,
    ) -> T:
        checked = check_changes(self.meta, changes)
        if (
            if_match is None
            and precondition is None
            and not (set(patched_attrs(checked)) & self._roots)
        ):
            # no shard changes: the parent row's own atomic patch, its pointers kept
            row = await self.inner.patch(key, checked)
            found = (await self._fetch([row]))[0]
            if found is None:
                raise NotFound(f"no {self.meta.name} with key {key!r}")
            return found  # type: ignore[no-any-return]

        def change(current: Any) -> Any:
            return self.meta.build(current, dict(resolve_increments(current, checked)))

        return await self._rewrite(key, change, if_match, precondition)  # type: ignore[no-any-return]

    async def delete(
        self, key: str, *, if_match: str | None = None, precondition: Filter | None = None
    ) -> None:
        await self._rewrite(key, None, if_match, precondition)

    def _plain(self, f: Filter | None, order: Any) -> None:
        """``ValidationError`` for a filter or order on a sharded attribute."""
        used = paths_of(validate_filter(f, self.meta))
        with contextlib.suppress(TypeError):  # a bad order: the inner store reports it
            used |= {o.attr for o in Order.parse(order)}
        for name in sorted(used):
            if root_of(name) in self._roots:
                raise ValidationError(
                    f"{name} is sharded: it cannot be filtered or ordered by", field=name
                )

    async def search(
        self,
        filter: Filter | None = None,
        order: Any = None,
        limit: int | None = None,
        page_key: str | None = None,
    ) -> Page[T]:
        self._plain(filter, order)
        page = await self.inner.search(filter, order, limit, page_key)
        items = await self._fetch(page.items)
        return Page([i for i in items if i is not None], page.next_page_key)

    async def count(self, filter: Filter | None = None) -> int:
        self._plain(filter, None)
        return await self.inner.count(filter)

    async def read_batch(self, keys: Sequence[str]) -> list[T | None]:
        if isinstance(keys, str):
            raise ValidationError("read_batch takes a list of keys")
        rows, fetched = await self._load(keys)
        return await self._fetch(rows, fetched)

    async def edit_batch(self, edits: Sequence[Edit], atomic: bool = True) -> list[EditResult[T]]:
        edits = await resolve_puts_async(self, edits)
        if not atomic or len(edits) <= 1:
            return [await self._edit_alone(e) for e in edits]
        for _ in attempts():
            results = await self._edit_together(edits)
            if results is not None:
                return results
        raise lost_too_often()

    async def _edit_alone(self, e: Edit) -> EditResult[T]:
        try:
            if not isinstance(e, Edit):
                raise ValidationError(f"not an Edit: {e!r}")
            if e.kind is EditKind.CREATE:
                item = await self.create(e.item)
            elif e.kind is EditKind.UPDATE:
                item = await self.update(e.item, if_match=e.if_match, precondition=e.precondition)
            elif e.kind is EditKind.PATCH:
                item = await self.patch(
                    e.key or "", e.changes or {}, if_match=e.if_match, precondition=e.precondition
                )
            else:
                old = await self.read(e.key or "")
                await self.delete(e.key or "", if_match=e.if_match, precondition=e.precondition)
                item = old  # type: ignore[assignment]
        except PersistyError as err:
            return EditResult(e, False, err.code, None, err.message, err.field)
        return EditResult(e, True, None, item)

    async def update_all(self, filter: Filter | None, changes: Mapping[str, Any]) -> int:
        done: int = await batched_update_all(self, filter, changes)
        return done

    async def delete_all(self, filter: Filter | None) -> int:
        self._plain(filter, None)
        done: int = await batched_delete_all(self, filter)
        return done

    async def explain(self, filter: Filter | None = None, order: Any = None) -> Explain:
        self._plain(filter, order)
        return await self.inner.explain(filter, order)
