"""The sharding layer: big nested parts of an item kept as rows of other stores.

The sync twin ``_sync.py`` is generated from this file by ``scripts/generate_sync.py``;
edit this file, never the twin.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import random
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from persisty._retry import attempts, lost_too_often
from persisty.errors import (
    Conflict,
    Forbidden,
    IntegrityError,
    NotFound,
    PersistyError,
    PreconditionFailed,
    Unavailable,
    ValidationError,
)
from persisty.layers._pinning._async import batched_delete_all, batched_update_all
from persisty.layers.sharded._model import SHARD_TAGS, SHARDED_OF, ShardPath
from persisty.layers.sharded._rows import Children, Fetched, ShardRows, Stale
from persisty.model import etag, meta_of
from persisty.query import (
    Filter,
    Order,
    compile_filter,
    paths_of,
    root_of,
    validate_filter,
)
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
READ_ATTEMPTS = 3
_ERRORS: dict[str, type[PersistyError]] = {
    c.code: c
    for c in (
        Conflict,
        Forbidden,
        IntegrityError,
        NotFound,
        PreconditionFailed,
        Unavailable,
        ValidationError,
    )
}


def _error(r: EditResult[Any]) -> PersistyError:
    cls = _ERRORS.get(r.code or "", PersistyError)
    return cls(r.message or r.code or "error", field=r.field)


class AsyncShardedStore(ShardRows, AsyncStore[T]):
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

    async def _load(self, keys: Sequence[str]) -> tuple[list[Any], Fetched]:
        """The parent rows of ``keys`` and the shard rows they are likely to point to
        (:meth:`_guess`), all in one ``db.read_batch`` (one ``BatchGetItem`` on DynamoDB)."""
        meta = self.inner.meta
        canon = [meta.key_string(meta.parse_key(k)) for k in keys]
        asked = [
            (path, k)
            for key in dict.fromkeys(canon)
            for path, ks in self._guess(key).items()
            for k in ks
        ]
        got = await self.database.read_batch(
            [(self.inner, k) for k in canon] + [(self.stores[p], k) for p, k in asked]
        )
        fetched: Fetched = {p.text: {} for p in self.shards}
        for (path, k), r in zip(asked, got[len(canon) :], strict=True):
            fetched[path][k] = r
        return got[: len(canon)], fetched

    async def _fetch(self, rows: Sequence[Any], fetched: Fetched | None = None) -> list[Any]:
        """The outer items of parent rows (``None`` stays ``None``): the shard rows not in
        ``fetched`` yet in one ``db.read_batch``; rows whose shards changed meanwhile are
        read again with their shards, then ``IntegrityError``."""
        result: list[Any] = [None] * len(rows)
        fetched = fetched if fetched is not None else {p.text: {} for p in self.shards}
        todo = [i for i, r in enumerate(rows) if r is not None]
        current = list(rows)
        for attempt in range(READ_ATTEMPTS):
            missing = list(
                dict.fromkeys(
                    (path, k)
                    for i in todo
                    for path, pairs in self._child_keys(current[i]).items()
                    for _, k in pairs
                    if k not in fetched[path]
                )
            )
            if missing:
                got = await self.database.read_batch([(self.stores[p], k) for p, k in missing])
                for (path, k), r in zip(missing, got, strict=True):
                    fetched[path][k] = r
            stale: list[int] = []
            failed_path = ""
            for i in todo:
                try:
                    result[i] = self._assemble(current[i], fetched)
                    self._remember(current[i])
                except Stale as e:
                    stale.append(i)
                    failed_path = e.path
            if not stale:
                return result
            if attempt == READ_ATTEMPTS - 1:
                raise IntegrityError(
                    f"{self.meta.name}: the {failed_path} shard does not match its item",
                    field=failed_path,
                )
            for i in stale:  # read the parent and the rows it points to again, together
                self._remember(current[i])
                for path, pairs in self._child_keys(current[i]).items():
                    for _, k in pairs:
                        fetched[path].pop(k, None)
            again, more = await self._load([self.inner.meta.key_of(current[i]) for i in stale])
            for path, found in more.items():
                fetched[path].update(found)
            todo = []
            for i, r in zip(stale, again, strict=True):
                if r is None:
                    result[i] = None  # deleted meanwhile
                else:
                    current[i] = r
                    todo.append(i)
            if not todo:
                return result
        return result

    # ---- writes -------------------------------------------------------------------------

    def _writes(
        self, old: Any, new: Any, children: Children, kind: EditKind
    ) -> list[tuple[AsyncStore[Any], Edit]]:
        """The commit of writing parent row ``new`` (over ``old``) with ``children``: only
        the shard rows that changed, and deletes of those that are gone."""
        tags_old: dict[str, str] = {} if old is None else (getattr(old, SHARD_TAGS) or {})
        tags_new: dict[str, str] = getattr(new, SHARD_TAGS)
        if kind is EditKind.DELETE:
            return self._deletes(self.inner.meta.key_of(old), etag(old), tags_old)
        parent = Edit.create(new) if old is None else Edit.update(new, if_match=etag(old))
        writes: list[tuple[AsyncStore[Any], Edit]] = [(self.inner, parent)]
        keep: set[tuple[str, str]] = set()  # (path, row key): the stores share row keys
        for p in self.shards:
            store = self.stores[p.text]
            for i, r in enumerate(children.get(p.text, [])):
                name = f"{p.text}#{i}" if p.each else p.text
                keep.add((p.text, store.meta.key_of(r)))
                held = tags_old.get(name)
                if old is None:
                    writes.append((store, Edit.create(r)))  # new: no read before the write
                elif held is not None and held != tags_new.get(name):
                    # the row the parent points to, as it pointed: no read before the write
                    writes.append((store, Edit.update(r, if_match=held)))
                elif held != tags_new.get(name):
                    writes.append((store, Edit.put(r)))
        if old is not None:
            for path, pairs in self._child_keys(old).items():
                for _, k in pairs:
                    if (path, k) not in keep:
                        writes.append((self.stores[path], Edit.delete(k)))
        return writes

    def _deletes(
        self, key: str, row_etag: str, tags: Mapping[str, str]
    ) -> list[tuple[AsyncStore[Any], Edit]]:
        """The commit of deleting the parent row ``key`` (if its etag is still ``row_etag``)
        and every shard row its pointers ``tags`` name."""
        writes: list[tuple[AsyncStore[Any], Edit]] = [
            (self.inner, Edit.delete(key, if_match=row_etag))
        ]
        for path, pairs in self._keys_for(key, tags).items():
            writes += [(self.stores[path], Edit.delete(k)) for _, k in pairs]
        return writes

    async def _commit(self, writes: list[tuple[AsyncStore[Any], Edit]]) -> EditResult[Any]:
        """One atomic commit; the parent's result, or the first real failure."""
        results = await self.database.commit(writes, atomic=True)
        for r in results:
            if not r.ok and r.code != "aborted":
                return r
        return results[0]

    async def _current(self, key: str) -> tuple[Any, Any] | None:
        rows, fetched = await self._load([key])
        if rows[0] is None:
            return None
        item = (await self._fetch(rows, fetched))[0]
        return None if item is None else (rows[0], item)

    def _check(self, item: Any, if_match: str | None, precondition: Filter | None) -> None:
        if if_match is not None and if_match != etag(item):
            raise PreconditionFailed("the item has changed (etag does not match)")
        if precondition is not None and not compile_filter(
            validate_filter(precondition, self.meta), self.meta
        )(item):
            raise PreconditionFailed("the precondition does not hold")

    async def _rewrite(
        self,
        key: str,
        change: Callable[[Any], Any] | None,
        if_match: str | None,
        precondition: Filter | None,
    ) -> Any:
        """Update (``change`` gives the new item) or delete (``None``) the item with ``key``
        while its parent row is as read; tried again when it changed in between."""
        key = self.inner.meta.key_string(self.inner.meta.parse_key(key))
        for attempt in attempts():
            if attempt >= 2:  # lost races: spread the contending writers out
                await asyncio.sleep(random.uniform(0, min(0.05, 0.001 * 2**attempt)))
            found: tuple[Any, Any] | None
            plain_delete = change is None and if_match is None and precondition is None
            seen = self._seen.get(key) if plain_delete and attempt == 0 else None
            if seen is not None:
                # the pointers last seen here, kept only if the parent is still as seen:
                # one commit, no read
                writes = self._deletes(key, *seen)
                r = await self._commit(writes)
                self._forget(key)
                if r.ok:
                    return None
                if r.code in ("precondition_failed", "not_found") and r.edit is writes[0][1]:
                    continue  # changed (or gone) since: read it
                raise _error(r)
            if plain_delete:
                row = await self.inner.read(key)  # its pointers name every row to delete
                found = None if row is None else (row, None)
            else:
                found = await self._current(key)
            if found is None:
                raise NotFound(f"no {self.meta.name} with key {key!r}")
            row, item = found
            if item is not None:
                self._check(item, if_match, precondition)
            children: Children = {}
            if change is None:
                writes = self._writes(row, row, {}, EditKind.DELETE)
            else:
                new = self._checked(change(item))
                if self.meta.key_of(new) != self.meta.key_of(item):
                    raise ValidationError(
                        "an update cannot change the key", field=self.meta.key.attrs[0]
                    )
                new_row, children = self._split(new)
                writes = self._writes(row, new_row, children, EditKind.UPDATE)
            r = await self._commit(writes)
            if r.ok:
                if change is None:
                    self._forget(key)
                    return None
                self._remember(r.item)
                return self._assemble(r.item, self._by_key(children))
            if r.code in ("precondition_failed", "not_found") and r.edit is writes[0][1]:
                continue  # the parent changed since it was read
            raise _error(r)
        raise lost_too_often()

    # ---- the contract -----------------------------------------------------------------

    async def create(self, item: T) -> T:
        row, children = self._split(self._checked(item))
        r = await self._commit(self._writes(None, row, children, EditKind.CREATE))
        if not r.ok:
            raise _error(r)
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

    async def _edit_together(self, edits: list[Edit]) -> list[EditResult[T]] | None:
        """One atomic commit of every edit's writes; ``None`` when an item changed."""
        plans: list[tuple[int, int, Children, bool, str]] = []  # (first write, count, …)
        writes: list[tuple[AsyncStore[Any], Edit]] = []
        failure: tuple[int, PersistyError] | None = None
        seen: set[str] = set()
        for i, e in enumerate(edits):
            try:
                key, w, children = await self._plan(e)
                if key in seen:
                    raise ValidationError(f"the batch edits {key!r} twice", field="edits")
                seen.add(key)
            except PersistyError as err:
                failure = (i, err)
                break
            plans.append((len(writes), len(w), children, e.kind is EditKind.DELETE, key))
            writes += w
        if failure is not None:
            i, problem = failure
            return [
                EditResult(e, False, problem.code, None, problem.message, problem.field)
                if n == i
                else EditResult(
                    e, False, "aborted", None, "not applied: another edit in the batch failed"
                )
                for n, e in enumerate(edits)
            ]
        results = await self.database.commit(writes, atomic=True)
        out: list[EditResult[T]] = []
        failed = False
        for e, (start, count, children, deleting, key) in zip(edits, plans, strict=True):
            mine = results[start : start + count]
            bad = [r for r in mine if not r.ok and r.code != "aborted"]
            if (
                bad
                and bad[0] is mine[0]
                and bad[0].code in ("precondition_failed", "not_found")
                and (e.kind is not EditKind.CREATE)
            ):
                return None  # a parent changed since it was read
            if bad:
                failed = True
                out.append(EditResult(e, False, bad[0].code, None, bad[0].message, bad[0].field))
            elif mine[0].ok:
                if deleting:
                    self._forget(key)
                else:
                    self._remember(mine[0].item)
                item = None if deleting else self._assemble(mine[0].item, self._by_key(children))
                out.append(EditResult(e, True, None, item))
            else:
                out.append(
                    EditResult(
                        e, False, "aborted", None, "not applied: another edit in the batch failed"
                    )
                )
        if failed:
            out = [
                r
                if not r.ok
                else dataclasses.replace(
                    r,
                    ok=False,
                    code="aborted",
                    item=None,
                    message="not applied: another edit in the batch failed",
                )
                for r in out
            ]
        return out

    async def _plan(self, e: Edit) -> tuple[str, list[tuple[AsyncStore[Any], Edit]], Children]:
        if not isinstance(e, Edit):
            raise ValidationError(f"not an Edit: {e!r}")
        if e.kind is EditKind.CREATE:
            new = self._checked(e.item)
            row, children = self._split(new)
            return self.meta.key_of(new), self._writes(None, row, children, e.kind), children
        if e.kind is EditKind.UPDATE:
            target = self._checked(e.item)
            key = self.meta.key_of(target)
        else:
            key = self.meta.key_string(self.meta.parse_key(e.key))
        found = await self._current(key)
        if found is None:
            raise NotFound(f"no {self.meta.name} with key {key!r}")
        row, item = found
        self._check(item, e.if_match, e.precondition)
        if e.kind is EditKind.DELETE:
            return key, self._writes(row, row, {}, e.kind), {}
        if e.kind is EditKind.PATCH:
            changes = check_changes(self.meta, e.changes or {})
            target = self._checked(self.meta.build(item, dict(resolve_increments(item, changes))))
        new_row, children = self._split(target)
        return key, self._writes(row, new_row, children, EditKind.UPDATE), children

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
