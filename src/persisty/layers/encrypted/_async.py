"""The field-encryption layer: chosen attributes are stored as AES-256-GCM ciphertext.

The sync twin ``persisty/layers/encrypted/_sync.py`` is generated from this file by
``scripts/generate_sync.py``; edit this file, never the twin.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
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
from persisty.layers.encrypted._crypto import SEALED_OF, FieldCipher, FieldPath, KeyProvider
from persisty.model import AttrMeta, etag, is_path, meta_of, to_utc
from persisty.query import (
    ALL,
    NONE,
    And,
    Compare,
    Filter,
    Not,
    Op,
    Or,
    Order,
    TextQuery,
    compile_filter,
    root_of,
    validate_filter,
)
from persisty.store import (
    AsyncStore,
    AsyncWrappedStore,
    Edit,
    EditKind,
    EditResult,
    Explain,
    Increment,
    OrderArg,
    Page,
    check_changes,
    patched_attrs,
    put_through_async,
    resolve_increments,
    resolve_puts_async,
)

T = TypeVar("T")
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_FINGERPRINT = msgspec.json.Encoder()


def _convert(value: Any, tp: Any) -> Any:
    result = msgspec.convert(value, tp, strict=False)
    return to_utc(result) if isinstance(result, dt.datetime) else result


class AsyncEncryptedStore(AsyncWrappedStore[T]):
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
        outer_cls = getattr(inner.meta.cls, SEALED_OF, None)
        self.meta = meta_of(outer_cls) if outer_cls is not None else inner.meta
        self.cipher = FieldCipher(
            self.meta, inner.meta, list(fields), keys, deterministic=deterministic, context=context
        )
        self._same = self.meta.cls is inner.meta.cls
        self._outer_types = {a: self.meta.by_name[a].type for a in self.cipher.attrs}
        self._inner_types = {a: inner.meta.by_name[a].type for a in self.cipher.attrs}
        self._whole = {p.attr: p for p in self.cipher.paths if p.whole}
        self._elements = {p.attr: p for p in self.cipher.paths if p.elements}
        self._text_attrs = [
            a.name for a in self.meta.attrs if a.kind == "str" and a.name not in self.cipher.attrs
        ]

    # ---- items ------------------------------------------------------------------------

    def _checked(self, item: Any) -> Any:
        """``item`` validated against the outer model (generated values left to ``inner``)."""
        meta = self.meta
        if isinstance(item, Mapping):
            item = meta.from_builtins(item)
        elif not isinstance(item, meta.cls):
            raise ValidationError(f"expected a {meta.cls.__name__}, got {type(item).__name__}")
        missing: dict[str, Any] = {}
        for a in meta.attrs:
            if a.generated in ("created", "updated", "sequence") and (
                getattr(item, a.name) is None
            ):
                missing[a.name] = 0 if a.generated == "sequence" else _EPOCH
        probe = dataclasses.replace(item, **missing) if missing else item
        checked = meta.validate(probe)
        return dataclasses.replace(checked, **dict.fromkeys(missing)) if missing else checked

    def _build(self, cls: type[Any], source: Any, values: dict[str, Any]) -> Any:
        if source.__class__ is cls:
            return dataclasses.replace(source, **values)
        data = {f.name: getattr(source, f.name) for f in dataclasses.fields(cls)}
        data.update(values)
        return cls(**data)

    def _seal(self, item: Any) -> Any:
        """The stored form of a checked outer item."""
        key = self.meta.key_of(item)
        for v in self.meta.key_values(item):
            if v is None:
                raise ValidationError(
                    "an encrypted store needs the key before the item is "
                    "stored (sequence keys are not supported)",
                    field=self.meta.key.attrs[0],
                )
        data = {a: msgspec.to_builtins(getattr(item, a)) for a in self.cipher.attrs}
        sealed = self.cipher.seal(data, key)
        values = {a: _convert(sealed[a], self._inner_types[a]) for a in self.cipher.attrs}
        return self._build(self.inner.meta.cls, item, values)

    def _open(self, stored: Any, legacy: bool = False) -> Any:
        """The outer item for a stored one (``IntegrityError`` if a ciphertext was altered)."""
        key = self.inner.meta.key_of(stored)
        data = {a: msgspec.to_builtins(getattr(stored, a)) for a in self.cipher.attrs}
        opened = self.cipher.open(data, key, legacy)
        try:
            values = {a: _convert(opened[a], self._outer_types[a]) for a in self.cipher.attrs}
        except msgspec.ValidationError as e:
            raise ValidationError(
                f"{self.meta.name}: a decrypted value does not fit: {e}"
            ) from None
        return self._build(self.meta.cls, stored, values)

    def _view(self, stored: Any) -> Any:
        return self._open(stored)

    def _fingerprint(self, stored: Any) -> tuple[str, bytes]:
        return (
            self.inner.meta.key_of(stored),
            _FINGERPRINT.encode([getattr(stored, a) for a in self.cipher.attrs]),
        )

    def _shown(self, stored: Any, plain: Any) -> Any:
        """The outer item for ``stored`` whose encrypted values were sealed from ``plain``
        (no decryption: equal ciphertexts under one key and binding have equal plaintexts)."""
        return self._build(self.meta.cls, stored, {a: getattr(plain, a) for a in self.cipher.attrs})

    def _batch_views(self) -> tuple[Callable[[Edit], Edit], Callable[[Any], Any]]:
        """A translate that remembers what it sealed and a view that uses it, for one call."""
        sealed: dict[tuple[str, bytes], Any] = {}

        def translate(e: Edit) -> Edit:
            if e.kind in (EditKind.CREATE, EditKind.UPDATE):
                checked = self._checked(e.item)
                item = self._seal(checked)
                sealed[self._fingerprint(item)] = checked
                return Edit(e.kind, item=item)
            return self._translate(e)

        def view(stored: Any) -> Any:
            plain = sealed.get(self._fingerprint(stored))
            return self._open(stored) if plain is None else self._shown(stored, plain)

        return translate, view

    def _seal_changes(self, key: str, changes: Mapping[str, Any]) -> dict[str, Any]:
        changes = check_changes(self.meta, changes)
        canonical = self.meta.key_string(self.meta.parse_key(key))
        for n in changes:
            if is_path(n) and patched_attrs([n])[0] in self.cipher.attrs:
                raise ValidationError(
                    f"{n} is in an encrypted attribute: write it with patch "
                    "or write_path, not in a batch",
                    field=n,
                )
        touched = [n for n in changes if n in self.cipher.attrs]
        if not touched:
            return changes
        for n in touched:
            if isinstance(changes[n], Increment):
                raise ValidationError(f"{n} is encrypted: the engine cannot increment it", field=n)
        data = {
            n: msgspec.to_builtins(_checked_value(self.meta.attr(n), changes[n])) for n in touched
        }
        sealed = self.cipher.seal(data, canonical, only=touched)
        result = dict(changes)
        for n in touched:
            result[n] = _convert(sealed[n], self._inner_types[n])
        return result

    def _translate(self, e: Edit) -> Edit:
        if e.kind == EditKind.CREATE:
            return Edit.create(self._seal(self._checked(e.item)))
        if e.kind == EditKind.UPDATE:
            return Edit.update(self._seal(self._checked(e.item)))
        if e.kind == EditKind.PATCH:
            if e.key is None:
                raise ValidationError("a patch needs a key")
            return Edit.patch(e.key, self._seal_changes(e.key, e.changes or {}))
        if e.key is None:
            raise ValidationError("a delete needs a key")
        return Edit.delete(e.key)

    def _predict(self, e: Edit, before: Any) -> Any:
        if e.kind == EditKind.DELETE:
            return None
        if e.kind in (EditKind.CREATE, EditKind.UPDATE):
            return e.item
        if before is None:
            return None
        changes = resolve_increments(before, check_changes(self.meta, e.changes or {}))
        return dataclasses.replace(
            before, **{n: _checked_value(self.meta.attr(n), v) for n, v in changes.items()}
        )

    # ---- filters ----------------------------------------------------------------------

    def _filter(self, f: Filter | None) -> Filter:
        return self._translate_filter(validate_filter(f, self.meta))

    def _translate_filter(self, f: Filter) -> Filter:
        if f is ALL or f is NONE:
            return f
        if isinstance(f, And):
            return And.of(*(self._translate_filter(x) for x in f.filters))
        if isinstance(f, Or):
            return Or.of(*(self._translate_filter(x) for x in f.filters))
        if isinstance(f, Not):
            return ~self._translate_filter(f.filter)
        if isinstance(f, TextQuery):
            return Or.of(*(Compare(a, Op.ICONTAINS, f.text) for a in self._text_attrs))
        if not isinstance(f, Compare) or root_of(f.attr) not in self.cipher.attrs:
            return f
        if f.attr not in self.cipher.attrs:  # a nested path into a sealed attribute
            raise ValidationError(
                f"{f.attr} is inside the encrypted attribute {root_of(f.attr)}: nested "
                "filters cannot run on its ciphertext",
                field=f.attr,
            )
        if f.op is Op.EXISTS or (f.op in (Op.EQ, Op.NE) and f.value is None):
            return f  # None is stored as None
        whole = self._whole.get(f.attr)
        if whole is not None and whole.deterministic and f.op in (Op.EQ, Op.NE, Op.IN):
            values = f.value if f.op is Op.IN else (f.value,)
            sealed = tuple(x for v in values for x in self._envelopes(whole, v))
            found = Compare(f.attr, Op.IN, sealed) if sealed else NONE
            return ~found if f.op is Op.NE else found
        each = self._elements.get(f.attr)
        if each is not None and each.deterministic and f.op is Op.CONTAINS:
            return Or.of(*(Compare(f.attr, Op.CONTAINS, x) for x in self._envelopes(each, f.value)))
        how = "deterministic " if (whole or each) and (whole or each).deterministic else ""  # type: ignore[union-attr]
        raise ValidationError(
            f"{f.attr} is {how}encrypted: {f.op.value} cannot run on its ciphertext (only "
            "exists, == None and, for deterministic paths, ==, != and in work)",
            field=f.attr,
        )

    def _envelopes(self, path: FieldPath, value: Any) -> list[Any]:
        if value is None:
            return [None]
        plain = msgspec.to_builtins(value)
        return [
            self.cipher.slot_value(path, self.cipher.seal_value(path, plain, "", path.text, kid))
            for kid in self.cipher.key_ids(path)
        ]

    def _order(self, order: OrderArg) -> OrderArg:
        try:
            terms = Order.parse(order)
        except TypeError:
            return order  # the inner store reports it
        for o in terms:
            if o.attr in self.cipher.attrs:
                raise ValidationError(
                    f"{o.attr} is encrypted: it cannot be ordered by", field=o.attr
                )
        return order

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


def _checked_value(a: AttrMeta, value: Any) -> Any:
    """``value`` coerced to ``a``'s type with its constraints checked."""
    tp = a.type
    if a.constraints:
        tp = typing.Annotated[tp, msgspec.Meta(**a.constraints)]
    try:
        return _convert(value, tp)
    except (msgspec.ValidationError, TypeError, ValueError) as e:
        raise ValidationError(f"{a.name}: {e}", field=a.name) from None
