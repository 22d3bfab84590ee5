"""The field-encryption layer: chosen attributes are stored as AES-256-GCM ciphertext.

The sync twin ``persisty/layers/encrypted/_sync.py`` is generated from this file by
``scripts/generate_sync.py``; edit this file, never the twin.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeVar

import msgspec

from persisty._retry import attempts, lost_too_often
from persisty.errors import (
    NotFound,
    PersistyError,
    PreconditionFailed,
    ValidationError,
)
from persisty.layers._pinning._async import (
    batched_update_all,
    pinned_edit_batch,
)
from persisty.layers._primitives import Outcome
from persisty.layers.encrypted._keys import KeyProvider
from persisty.layers.encrypted._view import EncryptedView
from persisty.model import etag, is_path
from persisty.query import (
    Filter,
    compile_filter,
    validate_filter,
)
from persisty.store import (
    AsyncStore,
    AsyncWrappedStore,
    Edit,
    EditKind,
    EditResult,
    Explain,
    OrderArg,
    Page,
    check_changes,
    patched_attrs,
    put_through_async,
    resolve_increments,
    resolve_puts_async,
)

T = TypeVar("T")


class AsyncEncryptedStore(AsyncWrappedStore[T], EncryptedView[T]):
    """A Store whose chosen attributes are encrypted before they reach ``inner``.

    ``fields`` are attribute paths: ``"body"``, nested ``"address.city"``, each list element
    ``"tags[]"`` or an attribute of each element ``"history[].city"``. A path written
    ``"=body"`` (or listed in ``deterministic``) is encrypted deterministically (AES-SIV) so
    ``==``, ``!=`` and ``in`` (``contains`` for ``"=tags[]"``) filters work on it; other
    filters and orderings on encrypted attributes raise ``ValidationError``. Free-text
    queries search the attributes that are not encrypted. ``None`` is stored as ``None``.

    The inner store holds the same class when each encrypted path is declared ``str`` (no
    constraints) or ``bytes``, else the class made by ``sealed_model``.

    Example::

        keys = KeyRing({"k1": KeyRing.new_key()}, current="k1")
        notes = encrypted(db.store(Note), fields=["body", "address.city"], keys=keys)
        n = await notes.create(Note(owner="ann", body="secret"))
        (await notes.read(notes.key_of(n))).body == "secret"      # stored as ciphertext
    """

    def __init__(
        self,
        inner: AsyncStore[Any],
        fields: Iterable[str],
        keys: KeyProvider,
        *,
        deterministic: Iterable[str] = (),
        context: str | None = None,
    ) -> None:
        if isinstance(fields, str):
            raise ValidationError("fields must be a list of paths", field="fields")
        self.inner = inner
        self._apply_fields(inner.meta, fields, keys, deterministic, context)

    # ---- the contract -----------------------------------------------------------------

    async def create(self, item: T) -> T:
        checked = self._checked(item)
        stored = await self.inner.create(self._seal(checked))
        return self._shown(stored, checked)  # type: ignore[no-any-return]

    async def read(self, key: str) -> T | None:
        stored = await self.inner.read(key)
        return None if stored is None else self._open(stored)

    async def _one(self, edit: Edit) -> Outcome:
        (outcome,) = await pinned_edit_batch(
            self.inner,
            self.meta,
            [edit],
            True,
            view=self._view,
            translate=self._translate,
            pin_all=False,
            same_etags=False,
            predict=self._predict,
        )
        if not outcome.ok:
            raise outcome.error()
        return outcome

    async def update(
        self, item: T, *, if_match: str | None = None, precondition: Filter | None = None
    ) -> T:
        if if_match is None and precondition is None:
            checked = self._checked(item)
            stored = await self.inner.update(self._seal(checked))
            return self._shown(stored, checked)  # type: ignore[no-any-return]
        outcome = await self._one(Edit.update(item, if_match=if_match, precondition=precondition))
        return self._open(outcome.item)  # type: ignore[no-any-return]

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
        changes = check_changes(self.meta, changes)
        if any(
            is_path(n) and r in self.cipher.attrs
            for n, r in zip(changes, patched_attrs(changes), strict=True)
        ):
            return await self._patch_sealed_paths(key, changes, if_match, precondition)
        if if_match is None and precondition is None:
            stored = await self.inner.patch(key, self._seal_changes(key, changes))
            return self._open(stored)  # type: ignore[no-any-return]
        outcome = await self._one(
            Edit.patch(key, changes, if_match=if_match, precondition=precondition)
        )
        return self._open(outcome.item)  # type: ignore[no-any-return]

    async def _patch_sealed_paths(
        self, key: str, changes: dict[str, Any], if_match: str | None, precondition: Filter | None
    ) -> T:
        """A patch naming paths inside encrypted attributes: the whole attribute is sealed
        anew from the item as read, written only while the item is as read."""
        check = (
            None
            if precondition is None
            else compile_filter(validate_filter(precondition, self.meta), self.meta)
        )
        for _ in attempts():
            current = await self.read(key)
            if current is None:
                raise NotFound(f"no {self.meta.name} with key {key!r}")
            if if_match is not None and etag(current) != if_match:
                raise PreconditionFailed("the item has changed (etag does not match)")
            if check is not None and not check(current):
                raise PreconditionFailed("the precondition does not hold")
            whole = dict(resolve_increments(current, changes))
            try:
                return await self.patch(key, whole, if_match=etag(current))
            except PreconditionFailed:
                continue  # changed since it was read: check and apply again
        raise lost_too_often()

    async def delete(
        self, key: str, *, if_match: str | None = None, precondition: Filter | None = None
    ) -> None:
        if if_match is None and precondition is None:
            await self.inner.delete(key)
            return
        await self._one(Edit.delete(key, if_match=if_match, precondition=precondition))

    async def search(
        self,
        filter: Filter | None = None,
        order: OrderArg = None,
        limit: int | None = None,
        page_key: str | None = None,
    ) -> Page[T]:
        page = await self.inner.search(self._filter(filter), self._order(order), limit, page_key)
        return Page([self._open(i) for i in page.items], page.next_page_key)

    async def count(self, filter: Filter | None = None) -> int:
        return await self.inner.count(self._filter(filter))

    async def read_batch(self, keys: Sequence[str]) -> list[T | None]:
        found = await self.inner.read_batch(keys)
        return [None if i is None else self._open(i) for i in found]

    async def edit_batch(self, edits: Sequence[Edit], atomic: bool = True) -> list[EditResult[T]]:
        edits = await resolve_puts_async(self, edits)
        for _ in attempts():
            planned, pinned = await self._resolve_sealed_paths(edits)
            if not pinned and planned is edits:
                return await self._edit_batch(edits, atomic)
            results = await self._edit_batch(planned, atomic)
            for r, e in zip(results, edits, strict=True):
                r.edit = e
            stale = [i for i in pinned if results[i].code == "precondition_failed"]
            if not stale:
                return results
            if atomic:
                continue  # an item changed since it was read: resolve the paths again
            for i in stale:
                e = edits[i]
                assert e.key is not None
                try:
                    item = await self.patch(e.key, e.changes or {}, precondition=e.precondition)
                    results[i] = EditResult(e, True, None, item)
                except PersistyError as err:
                    results[i] = EditResult(e, False, err.code, None, err.message, err.field)
            return results
        raise lost_too_often()

    async def _resolve_sealed_paths(self, edits: list[Edit]) -> tuple[list[Edit], set[int]]:
        """``edits`` with each patch that names paths inside encrypted attributes turned
        into a patch of the whole attributes, resolved on the items as read; ``pinned`` are
        the edits this pinned to the etag it read (a ``precondition_failed`` there means
        the item changed in between)."""
        todo: list[int] = []
        for i, e in enumerate(edits):
            if (
                isinstance(e, Edit)
                and e.kind is EditKind.PATCH
                and isinstance(e.changes, Mapping)
                and any(
                    is_path(n) and patched_attrs([n])[0] in self.cipher.attrs for n in e.changes
                )
            ):
                todo.append(i)
        if not todo:
            return edits, set()
        keys = [edits[i].key or "" for i in todo]
        try:
            found = await self.read_batch(keys)
        except PersistyError:
            found = [None] * len(keys)
        planned = list(edits)
        pinned: set[int] = set()
        for i, current in zip(todo, found, strict=True):
            e = edits[i]
            if current is None:
                planned[i] = Edit.patch(
                    e.key or "", {}, if_match=e.if_match, precondition=e.precondition
                )
                continue
            try:
                whole = dict(resolve_increments(current, check_changes(self.meta, e.changes or {})))
            except PersistyError:
                continue  # the batch reports the bad change
            if e.if_match is None:
                pinned.add(i)
            planned[i] = Edit.patch(
                e.key or "",
                whole,
                if_match=e.if_match or etag(current),
                precondition=e.precondition,
            )
        return planned, pinned

    async def _edit_batch(self, edits: list[Edit], atomic: bool) -> list[EditResult[T]]:
        translate, view = self._batch_views()
        outcomes = await pinned_edit_batch(
            self.inner,
            self.meta,
            edits,
            atomic,
            view=self._view,
            translate=translate,
            pin_all=False,
            same_etags=False,
            predict=self._predict,
        )
        return [o.result(view) for o in outcomes]

    async def update_all(self, filter: Filter | None, changes: Mapping[str, Any]) -> int:
        changes = check_changes(self.meta, changes)
        if any(n in self.cipher.attrs for n in changes):
            return await batched_update_all(self, filter, changes)
        return await self.inner.update_all(self._filter(filter), changes)

    async def delete_all(self, filter: Filter | None) -> int:
        return await self.inner.delete_all(self._filter(filter))

    async def explain(self, filter: Filter | None = None, order: OrderArg = None) -> Explain:
        return await self.inner.explain(self._filter(filter), self._order(order))

    # ---- key rotation -----------------------------------------------------------------

    async def reencrypt(self, *, legacy: bool = False, batch_size: int = 100) -> int:
        """Rewrite every item with a value sealed by a key that is no longer current for its
        path; return how many items were rewritten. With ``legacy=True`` values that are not
        ciphertext at all (stored before the attribute was encrypted) are sealed too.

        Each item is rewritten only if it did not change since it was read (a concurrent
        write through this layer seals with the current key anyway); the stored item's
        ``updated`` timestamps move, as with any write.

        Example::

            notes = encrypted(db.store(Note), fields=["body"],
                              keys=KeyRing({"k1": old, "k2": new}, current="k2"))
            await notes.reencrypt()     # afterwards k1 can be retired
        """
        done = 0
        todo: list[Any] = []
        async for stored in self.inner.search_all(None, page_size=max(batch_size, 1)):
            data = {a: msgspec.to_builtins(getattr(stored, a)) for a in self.cipher.attrs}
            if self.cipher.stale_key_ids(data):
                todo.append(stored)
            if len(todo) >= batch_size:
                done += await self._rewrite(todo, legacy)
                todo = []
        if todo:
            done += await self._rewrite(todo, legacy)
        return done

    async def _rewrite(self, stored_items: list[Any], legacy: bool) -> int:
        done = 0
        for _ in range(10):
            edits = [
                Edit.update(self._seal(self._open(s, legacy)), if_match=etag(s))
                for s in stored_items
            ]
            results = await self.inner.edit_batch(edits, atomic=False)
            retry = []
            for s, r in zip(stored_items, results, strict=True):
                if r.ok:
                    done += 1
                elif r.code == "precondition_failed":
                    retry.append(self.inner.meta.key_of(s))
                elif r.code != "not_found":
                    raise PersistyError(f"reencrypt: {r.message}")
            if not retry:
                return done
            fresh = await self.inner.read_batch(retry)
            stored_items = [
                s
                for s in fresh
                if s is not None
                and self.cipher.stale_key_ids(
                    {a: msgspec.to_builtins(getattr(s, a)) for a in self.cipher.attrs}
                )
            ]
            if not stored_items:
                return done
        return done
