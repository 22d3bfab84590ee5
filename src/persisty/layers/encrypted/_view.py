"""What the encrypted layer does to items, edits, filters and orders (no I/O here; the async
store and its generated sync twin share it): sealing an item before it is stored, opening one
read back, and rewriting filters on encrypted attributes into filters on their ciphertexts."""

from __future__ import annotations

import dataclasses
import datetime as dt
import typing
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Generic, TypeVar

import msgspec

from persisty.errors import ValidationError
from persisty.layers.encrypted._crypto import FieldCipher
from persisty.layers.encrypted._keys import KeyProvider
from persisty.layers.encrypted._paths import SEALED_OF, FieldPath
from persisty.model import AttrMeta, StoreMeta, is_path, meta_of, to_utc
from persisty.query import (
    NONE,
    Compare,
    Filter,
    Op,
    Or,
    Order,
    expand_text,
    map_leaves,
    root_of,
    validate_filter,
)
from persisty.store import (
    Edit,
    EditKind,
    Increment,
    OrderArg,
    check_changes,
    patched_attrs,
    resolve_increments,
)

T = TypeVar("T")
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_FINGERPRINT = msgspec.json.Encoder()


def convert(value: Any, tp: Any) -> Any:
    result = msgspec.convert(value, tp, strict=False)
    return to_utc(result) if isinstance(result, dt.datetime) else result


def checked_value(a: AttrMeta, value: Any) -> Any:
    """``value`` coerced to ``a``'s type with its constraints checked."""
    tp = a.type
    if a.constraints:
        tp = typing.Annotated[tp, msgspec.Meta(**a.constraints)]
    try:
        return convert(value, tp)
    except (msgspec.ValidationError, TypeError, ValueError) as e:
        raise ValidationError(f"{a.name}: {e}", field=a.name) from None


class EncryptedView(Generic[T]):
    """The item, edit and filter translations of an encrypted store, shared by
    :class:`AsyncEncryptedStore` and :class:`EncryptedStore` (which call
    :meth:`_apply_fields` in their constructor)."""

    meta: StoreMeta

    def _apply_fields(
        self,
        stored_meta: StoreMeta,
        fields: Iterable[str],
        keys: KeyProvider,
        deterministic: Iterable[str],
        context: str | None,
    ) -> None:
        self.stored_meta = stored_meta
        outer_cls = getattr(stored_meta.cls, SEALED_OF, None)
        self.meta = meta_of(outer_cls) if outer_cls is not None else stored_meta
        self.cipher = FieldCipher(
            self.meta, stored_meta, list(fields), keys, deterministic=deterministic, context=context
        )
        self._same = self.meta.cls is stored_meta.cls
        self._outer_types = {a: self.meta.by_name[a].type for a in self.cipher.attrs}
        self._inner_types = {a: stored_meta.by_name[a].type for a in self.cipher.attrs}
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
        values = {a: convert(sealed[a], self._inner_types[a]) for a in self.cipher.attrs}
        return self._build(self.stored_meta.cls, item, values)

    def _open(self, stored: Any, legacy: bool = False) -> Any:
        """The outer item for a stored one (``IntegrityError`` if a ciphertext was altered)."""
        key = self.stored_meta.key_of(stored)
        data = {a: msgspec.to_builtins(getattr(stored, a)) for a in self.cipher.attrs}
        opened = self.cipher.open(data, key, legacy)
        try:
            values = {a: convert(opened[a], self._outer_types[a]) for a in self.cipher.attrs}
        except msgspec.ValidationError as e:
            raise ValidationError(
                f"{self.meta.name}: a decrypted value does not fit: {e}"
            ) from None
        return self._build(self.meta.cls, stored, values)

    def _view(self, stored: Any) -> Any:
        return self._open(stored)

    def _fingerprint(self, stored: Any) -> tuple[str, bytes]:
        return (
            self.stored_meta.key_of(stored),
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
            n: msgspec.to_builtins(checked_value(self.meta.attr(n), changes[n])) for n in touched
        }
        sealed = self.cipher.seal(data, canonical, only=touched)
        result = dict(changes)
        for n in touched:
            result[n] = convert(sealed[n], self._inner_types[n])
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
            before, **{n: checked_value(self.meta.attr(n), v) for n, v in changes.items()}
        )

    # ---- filters ----------------------------------------------------------------------

    def _filter(self, f: Filter | None) -> Filter:
        return self._translate_filter(validate_filter(f, self.meta))

    def _translate_filter(self, f: Filter) -> Filter:
        # a text query searches the attributes that are not encrypted
        return map_leaves(expand_text(f, self._text_attrs), self._translate_leaf)

    def _translate_leaf(self, f: Filter) -> Filter:
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
