"""The relations layer: batched loading of related items and referential integrity.

Edit this file; scripts/generate_sync.py writes its sync twin ``layers/related/_sync.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from persisty.errors import Conflict, NotFound, PersistyError, PreconditionFailed, ValidationError
from persisty.layers._primitives import Outcome
from persisty.layers.related._plan import DeletePlan, access_control_of, check_declaration, fk_keys
from persisty.model import (
    BelongsTo,
    Relation,
    StoreMeta,
    etag,
    meta_of,
    references_to,
    relations_of,
)
from persisty.query import F, Filter, compile_filter, validate_filter
from persisty.store import (
    AsyncDatabase,
    AsyncStore,
    AsyncWrappedStore,
    Edit,
    EditKind,
    EditResult,
    put_through_async,
    resolve_puts_async,
)

T = TypeVar("T")
StoreSource = (
    AsyncDatabase | Mapping[type[Any], AsyncStore[Any]] | Callable[[type[Any]], AsyncStore[Any]]
)
LOAD_PAGE = 1000
_Plan = DeletePlan[AsyncStore[Any]]


class AsyncRelatedStore(AsyncWrappedStore[T]):
    """A Store that knows the relations declared on its class: ``load`` reads related items
    in one batched call per relation, and deleting an item applies the ``on_delete`` rule of
    every reference to it (``block`` raises ``Conflict``, ``cascade`` deletes the referring
    items, ``set_null`` clears their foreign key), through every delete path (``delete``,
    ``edit_batch``, ``delete_all``). Creating or changing a foreign key to an item that does
    not exist raises ``ValidationError`` naming the foreign key.

    ``stores`` says where related items live: the database (``db.store(cls)``), a mapping
    from class to store, or a callable. A callable is also asked for the store's own class
    when a reference is checked, so it can give the caller's view of every store
    (``lambda cls: secured(db.store(cls), policies[cls], principal)``): a target hidden from
    the caller is then exactly a missing one, and a delete rule that would reach items
    outside the caller's rules (an access-control layer's ``outside_rules``) is refused with
    ``Conflict``, without counts.

    Example::

        books = related(db.store(Book), db)
        page = await books.search(F.year > 2000)
        authors = await books.load(page.items, "author")       # one read_batch
        await related(db.store(Author), db).delete("a1")         # cascades to the books
    """

    def __init__(self, inner: AsyncStore[T], stores: StoreSource) -> None:
        super().__init__(inner)
        self._source = stores
        self.relations: dict[str, Relation] = relations_of(self.meta.cls)
        self._belongs = [r for r in self.relations.values() if isinstance(r, BelongsTo)]
        for r in self.relations.values():
            check_declaration(r)

    # ---- where related items live ------------------------------------------------------

    def store_for(self, cls: type[Any]) -> AsyncStore[Any]:
        """The store of ``cls`` this layer reads and writes related items through."""
        if cls is self.meta.cls:
            return self.inner
        source = self._source
        if isinstance(source, AsyncDatabase):
            return source.store(cls)
        if isinstance(source, Mapping):
            found = source.get(cls)
            if found is None:
                raise ValidationError(f"no store given for {cls.__name__}")
            return found
        return source(cls)

    def _view_for(self, cls: type[Any]) -> AsyncStore[Any]:
        """The store of ``cls`` to check references against: the caller's view of it when
        ``stores`` is a callable (its own class included), else :meth:`store_for`."""
        if callable(self._source) and not isinstance(self._source, AsyncDatabase | Mapping):
            return self._source(cls)
        return self.store_for(cls)

    def _relation(self, name: str) -> Relation:
        found = self.relations.get(name)
        if found is None:
            raise ValidationError(f"{self.meta.name} has no relation {name!r}", field=name)
        return found

    # ---- loading ------------------------------------------------------------------------

    async def load(self, items: Sequence[Any], relation: str, order: Any = None) -> list[Any]:
        """The related items of each of ``items`` for ``relation`` (aligned with ``items``):
        the item or ``None`` for ``BelongsTo``/``HasOne``, a list for ``HasMany``. One
        ``read_batch`` (``BelongsTo``) or one search (``HasMany``/``HasOne``, paged only
        beyond 1,000 results) per call, however many items.

        Example::

            books = related(db.store(Book), db)
            page = await books.search()
            for book, author in zip(page.items, await books.load(page.items, "author")):
                print(book.title, author.name if author else None)
        """
        r = self._relation(relation)
        target = self.store_for(r.target)
        if isinstance(r, BelongsTo):
            values = [getattr(i, r.foreign_key) for i in items]
            keys = fk_keys(target.meta, values)
            found = dict(zip(keys, await target.read_batch(keys), strict=True)) if keys else {}
            return [None if v is None else found.get(fk_keys(target.meta, [v])[0]) for v in values]
        own = [self.meta.key_values(i)[0] for i in items]
        groups: dict[str, list[Any]] = {}
        keys = fk_keys(self.meta, own)
        if keys:
            f = F[r.foreign_key].in_(keys)
            async for child in target.search_all(f, order, page_size=LOAD_PAGE):
                groups.setdefault(
                    fk_keys(self.meta, [getattr(child, r.foreign_key)])[0], []
                ).append(child)
        result: list[Any] = []
        for v in own:
            found_children = groups.get(fk_keys(self.meta, [v])[0], [])
            result.append(
                list(found_children) if r.many else (found_children[0] if found_children else None)
            )
        return result

    # ---- integrity: foreign keys point at existing items ---------------------------------

    async def _reference_errors(self, edits: Sequence[Edit]) -> dict[int, PersistyError]:
        """For each edit (by index) whose foreign keys name an item that does not exist, the
        ``ValidationError``; one ``read_batch`` per relation for the whole batch."""
        errors: dict[int, PersistyError] = {}
        if not self._belongs:
            return errors
        values: dict[int, dict[str, Any]] = {}
        own: set[str] = set()  # items written by the batch count as existing (trees)
        for i, e in enumerate(edits):
            if not isinstance(e, Edit):
                continue
            try:
                if e.kind in (EditKind.CREATE, EditKind.UPDATE):
                    item = (
                        e.item
                        if not isinstance(e.item, Mapping)
                        else (self.meta.from_builtins(e.item))
                    )
                    if not isinstance(item, self.meta.cls):
                        continue
                    own.add(self.meta.key_of(item))
                    values[i] = {r.foreign_key: getattr(item, r.foreign_key) for r in self._belongs}
                elif e.kind == EditKind.PATCH and isinstance(e.changes, Mapping):
                    values[i] = {
                        r.foreign_key: self.meta.attr(r.foreign_key).coerce(
                            e.changes[r.foreign_key]
                        )
                        for r in self._belongs
                        if r.foreign_key in e.changes
                    }
            except PersistyError as err:
                errors[i] = err
        for r in self._belongs:
            target = self._view_for(r.target)  # an item hidden from the caller is missing
            wanted = {
                i: fk_keys(target.meta, [v[r.foreign_key]])
                for i, v in values.items()
                if v.get(r.foreign_key) is not None
            }
            keys = list(
                dict.fromkeys(
                    k
                    for ks in wanted.values()
                    for k in ks
                    if not (r.target is self.meta.cls and k in own)
                )
            )
            if not keys:
                continue
            found = await target.read_batch(keys)
            missing = {k for k, f in zip(keys, found, strict=True) if f is None}
            for i, ks in wanted.items():
                if i not in errors and ks and ks[0] in missing:
                    errors[i] = ValidationError(
                        f"{self.meta.name}.{r.foreign_key}: no {target.meta.name} with key "
                        f"{ks[0]!r}",
                        field=r.foreign_key,
                    )
        return errors

    async def _check(self, edit: Edit) -> None:
        errors = await self._reference_errors([edit])
        if errors:
            raise errors[0]

    async def create(self, item: T) -> T:
        if isinstance(item, Mapping):
            item = self.meta.from_builtins(item)
        await self._check(Edit.create(item))
        return await self.inner.create(item)

    async def update(
        self, item: T, *, if_match: str | None = None, precondition: Filter | None = None
    ) -> T:
        if isinstance(item, Mapping):
            item = self.meta.from_builtins(item)
        await self._check(Edit.update(item))
        return await self.inner.update(item, if_match=if_match, precondition=precondition)

    async def put(self, item: T, *, if_match: str | None = None) -> T:
        # made of this layer's read, create and update, so their rules apply to it
        return await put_through_async(self, item, if_match)  # type: ignore[no-any-return]

    async def patch(
        self,
        key: str,
        changes: Mapping[str, Any],
        *,
        if_match: str | None = None,
        precondition: Filter | None = None,
    ) -> T:
        if isinstance(changes, Mapping):
            await self._check(Edit.patch(key, changes))
        return await self.inner.patch(key, changes, if_match=if_match, precondition=precondition)

    async def update_all(self, filter: Filter | None, changes: Mapping[str, Any]) -> int:
        if isinstance(changes, Mapping):
            await self._check(Edit.patch("", changes))
        return await self.inner.update_all(filter, changes)

    # ---- integrity: deleting referenced items --------------------------------------------

    async def _plan_deletes(
        self,
        meta: StoreMeta,
        store: AsyncStore[Any],
        keys: list[str],
        plan: _Plan,
        depth: int = 0,
    ) -> None:
        if depth > 50:
            raise Conflict("delete cascades more than 50 levels deep")
        for ref in references_to(meta.cls):
            child_store = self.store_for(ref.child)
            child_meta = meta_of(ref.child)
            guard = access_control_of(self._view_for(ref.child))
            if guard is not None:  # never reach, count or change what the caller may not
                action = {"block": "read", "cascade": "delete"}.get(
                    ref.on_delete or "block", "update"
                )
                if await guard.outside_rules(F[ref.foreign_key].in_(keys), action) or (
                    ref.on_delete == "set_null" and ref.foreign_key in guard.locked
                ):
                    raise Conflict(
                        f"cannot delete {meta.name} {keys[0] if len(keys) == 1 else keys!r}: "
                        f"{child_meta.name} items you may not change refer to it "
                        f"({child_meta.name}.{ref.foreign_key}, on_delete="
                        f"'{ref.on_delete or 'block'}')",
                        field=ref.foreign_key,
                    )
            children = [
                c
                async for c in child_store.search_all(
                    F[ref.foreign_key].in_(keys), page_size=LOAD_PAGE
                )
            ]
            child_keys = [
                child_meta.key_of(c)
                for c in children
                if not plan.deleting(child_store, child_meta.key_of(c))
            ]
            if not child_keys:
                continue
            if ref.on_delete == "block":
                raise Conflict(
                    f"cannot delete {meta.name} {keys[0] if len(keys) == 1 else keys!r}: "
                    f"{len(child_keys)} {child_meta.name} item(s) refer to it "
                    f"({child_meta.name}.{ref.foreign_key}, on_delete='block')",
                    field=ref.foreign_key,
                )
            if ref.on_delete == "set_null":
                for k in child_keys:
                    plan.add(child_store, k, Edit.patch(k, {ref.foreign_key: None}))
                continue
            for k in child_keys:
                plan.add(child_store, k, Edit.delete(k))
            await self._plan_deletes(child_meta, child_store, child_keys, plan, depth + 1)

    async def _apply_plan(self, plan: _Plan) -> None:
        """Writes to other stores, deepest first, each store's in one atomic batch."""
        for store in reversed(plan.stores):
            if store is self.inner:
                continue
            edits = list(plan.edits[id(store)].values())
            results = await store.edit_batch(edits, atomic=True)
            failed = [r for r in results if not r.ok and r.code != "aborted"]
            if failed:
                raise Conflict(
                    f"{store.meta.name}: a related change failed "
                    f"({failed[0].code}: {failed[0].message}); nothing was deleted "
                    "from this store",
                    field=failed[0].field,
                )

    def _shared_database(self, plan: _Plan) -> AsyncDatabase | None:
        """The database whose own stores are every store ``plan`` writes to (so one
        ``db.commit`` applies all of it), else ``None``."""
        db = self._source
        if not isinstance(db, AsyncDatabase):
            return None
        own = {id(s) for s in db._stores.values()}
        if all(id(s) in own for s in plan.stores) and id(self.inner) in own:
            return db
        return None

    async def _commit_plan(
        self, db: AsyncDatabase, plan: _Plan, edits: list[Edit]
    ) -> list[EditResult[T]]:
        """The related writes of ``plan`` and this store's ``edits`` in one atomic commit;
        a related write that fails raises ``Conflict`` (nothing is written anywhere)."""
        writes: list[tuple[AsyncStore[Any], Edit]] = [
            (store, e)
            for store in reversed(plan.stores)
            if store is not self.inner
            for e in plan.edits[id(store)].values()
        ]
        related = len(writes)
        writes += [(self.inner, e) for e in edits]
        results = await db.commit(writes, atomic=True)
        for (store, _), r in zip(writes[:related], results, strict=False):
            if not r.ok and r.code != "aborted":
                raise Conflict(
                    f"{store.meta.name}: a related change failed ({r.code}: "
                    f"{r.message}); nothing was deleted",
                    field=r.field,
                )
        return results[related:]

    async def _delete_with_rules(self, edits: list[Edit], atomic: bool) -> list[EditResult[T]]:
        """``edits`` (some deletes) with the delete rules applied; writes to this store that
        the rules cause (a tree's own children) join the caller's batch. The deletes' own
        conditions are checked before anything else is written."""
        meta = self.meta
        failures: dict[int, PersistyError] = {}
        deleted: dict[int, str] = {}
        for i, e in enumerate(edits):
            if isinstance(e, Edit) and e.kind == EditKind.DELETE:
                try:
                    deleted[i] = meta.key_string(meta.parse_key(e.key))
                except PersistyError as err:
                    failures[i] = err
        keys = list(dict.fromkeys(deleted.values()))
        current = dict(zip(keys, await self.inner.read_batch(keys), strict=True)) if keys else {}
        for i, k in deleted.items():
            e, found = edits[i], current.get(k)
            if found is None:
                failures[i] = NotFound(f"no {meta.name} with key {k!r}")
            elif e.if_match is not None and e.if_match != etag(found):
                failures[i] = PreconditionFailed("the item has changed (etag does not match)")
            elif e.precondition is not None and not compile_filter(
                validate_filter(e.precondition, meta), meta
            )(found):
                failures[i] = PreconditionFailed("the precondition does not hold")
        if failures and atomic:
            return [
                EditResult(e, False, failures[i].code, None, failures[i].message, failures[i].field)
                if i in failures
                else EditResult(
                    e, False, "aborted", None, "not applied: another edit in the batch failed"
                )
                for i, e in enumerate(edits)
            ]
        going = [k for i, k in deleted.items() if i not in failures]
        plan = _Plan()
        for k in going:
            plan.add(self.inner, k, Edit.delete(k))
        if going:
            await self._plan_deletes(meta, self.inner, going, plan)
        own = plan.edits.get(id(self.inner), {})
        extra = [e for k, e in own.items() if k not in going]
        todo = [e for i, e in enumerate(edits) if i not in failures]
        shared = self._shared_database(plan) if atomic else None
        if shared is not None:  # one transaction: the related writes and the batch
            done = iter((await self._commit_plan(shared, plan, extra + todo))[len(extra) :])
        else:
            await self._apply_plan(plan)
            done = iter((await self.inner.edit_batch(extra + todo, atomic))[len(extra) :])
        return [
            EditResult(e, False, failures[i].code, None, failures[i].message, failures[i].field)
            if i in failures
            else next(done)
            for i, e in enumerate(edits)
        ]

    async def delete(
        self, key: str, *, if_match: str | None = None, precondition: Filter | None = None
    ) -> None:
        if not references_to(self.meta.cls):
            await self.inner.delete(key, if_match=if_match, precondition=precondition)
            return
        self.meta.parse_key(key)
        (result,) = await self._delete_with_rules(
            [Edit.delete(key, if_match=if_match, precondition=precondition)], True
        )
        if not result.ok:
            raise Outcome(
                result.edit, False, result.code, message=result.message, field=result.field
            ).error()

    async def edit_batch(self, edits: Sequence[Edit], atomic: bool = True) -> list[EditResult[T]]:
        edits = await resolve_puts_async(self, edits)
        errors = await self._reference_errors(edits)
        if errors:
            if atomic:
                return [
                    EditResult(e, False, errors[i].code, None, errors[i].message, errors[i].field)
                    if i in errors
                    else EditResult(
                        e, False, "aborted", None, "not applied: another edit in the batch failed"
                    )
                    for i, e in enumerate(edits)
                ]
            todo = [e for i, e in enumerate(edits) if i not in errors]
            done = iter(await self._edit_batch(todo, atomic) if todo else [])
            return [
                EditResult(e, False, errors[i].code, None, errors[i].message, errors[i].field)
                if i in errors
                else next(done)
                for i, e in enumerate(edits)
            ]
        return await self._edit_batch(edits, atomic)

    async def _edit_batch(self, edits: list[Edit], atomic: bool) -> list[EditResult[T]]:
        if not any(isinstance(e, Edit) and e.kind == EditKind.DELETE for e in edits) or (
            not references_to(self.meta.cls)
        ):
            return await self.inner.edit_batch(edits, atomic)
        try:
            return await self._delete_with_rules(edits, atomic)
        except Conflict as err:
            if atomic or len(edits) == 1:
                return [
                    EditResult(
                        e,
                        False,
                        err.code if e.kind == EditKind.DELETE else "aborted",
                        None,
                        err.message,
                        err.field,
                    )
                    for e in edits
                ]
            return [(await self._edit_batch([e], True))[0] for e in edits]

    async def delete_all(self, filter: Filter | None) -> int:
        if not references_to(self.meta.cls):
            return await self.inner.delete_all(filter)
        total = 0
        keys = [self.meta.key_of(i) async for i in self.inner.search_all(filter)]
        dry_run = DeletePlan[
            AsyncStore[Any]
        ]()  # a blocked delete stops the whole call before anything is written
        for k in keys:
            dry_run.add(self.inner, k, Edit.delete(k))
        if keys:
            await self._plan_deletes(self.meta, self.inner, keys, dry_run)
        for start in range(0, len(keys), 100):
            chunk = [Edit.delete(k, precondition=filter) for k in keys[start : start + 100]]
            results = await self._delete_with_rules(chunk, False)
            total += sum(1 for r in results if r.ok)
        return total
