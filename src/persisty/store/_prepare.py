"""Turning what a user passes into what is stored: generators, flags and validation."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from persisty.errors import ValidationError
from persisty.model import StoreMeta
from persisty.store._types import Increment

NUMERIC_KINDS = frozenset({"int", "float", "decimal"})


def _defaults(meta: StoreMeta) -> dict[str, Any]:
    result = {}
    for f in dataclasses.fields(meta.cls):
        if f.default is not dataclasses.MISSING:
            result[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            result[f.name] = f.default_factory
    return result


def prepare_create(
    meta: StoreMeta, item: Any, now: dt.datetime, sequences: Mapping[str, int] | None = None
) -> Any:
    """The item to insert: defaults for non-creatable attributes, generated values, checked."""
    item = _instance(meta, item)
    return meta.build(item, _create_changes(meta, item, now, sequences))


def prepare_creates(meta: StoreMeta, items: Sequence[Any], now: dt.datetime) -> list[Any]:
    """:func:`prepare_create` for many items (without sequences) in one validation pass;
    the first invalid item raises the error ``prepare_create`` gives for it."""
    items = [_instance(meta, i) for i in items]
    if not meta.set_on_create and meta.ttl is None:
        return meta.build_many(items)
    return meta.build_many(items, [_create_changes(meta, i, now, None) for i in items])


def as_item(meta: StoreMeta, item: Any) -> Any:
    """``item`` as an instance of the stored class (a mapping is converted and checked)."""
    return _instance(meta, item)


def _instance(meta: StoreMeta, item: Any) -> Any:
    if isinstance(item, meta.cls):
        return item
    if isinstance(item, Mapping):
        return meta.from_builtins(item)
    raise ValidationError(f"expected a {meta.cls.__name__}, got {type(item).__name__}")


def _create_changes(
    meta: StoreMeta, item: Any, now: dt.datetime, sequences: Mapping[str, int] | None
) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    defaults = None
    for a in meta.set_on_create:
        if not a.creatable:
            defaults = defaults or _defaults(meta)
            d = defaults.get(a.name)
            changes[a.name] = d() if callable(d) else d
        if (a.generated == "created" and getattr(item, a.name) is None) or a.generated == "updated":
            changes[a.name] = now
        elif a.generated == "sequence" and getattr(item, a.name) is None:
            if sequences is None or a.name not in sequences:
                raise ValidationError(f"{a.name}: no sequence value", field=a.name)
            changes[a.name] = sequences[a.name]
    if meta.ttl is not None and getattr(item, meta.expires) is None:  # type: ignore[arg-type]
        changes[meta.expires] = now + meta.ttl  # type: ignore[index]
    return changes


def prepare_update(meta: StoreMeta, item: Any, current: Any, now: dt.datetime) -> Any:
    """The item to store for ``update``: non-updatable and created values kept, checked."""
    if not isinstance(item, meta.cls):
        raise ValidationError(f"expected a {meta.cls.__name__}, got {type(item).__name__}")
    changes: dict[str, Any] = {}
    for a in meta.generated_or_fixed:
        if a.generated == "updated":
            changes[a.name] = now
        elif not a.updatable or a.generated in ("created", "sequence"):
            changes[a.name] = getattr(current, a.name)
    if meta.ttl is not None and getattr(item, meta.expires) is None:  # type: ignore[arg-type]
        changes[meta.expires] = now + meta.ttl  # type: ignore[index]
    return meta.build(item, changes)


def check_changes(meta: StoreMeta, changes: Mapping[str, Any]) -> dict[str, Any]:
    """Validate the names in a patch: known, updatable, not part of the key."""
    if not isinstance(changes, Mapping):
        raise ValidationError("changes must be a mapping of attribute names to values")
    for name, value in changes.items():
        a = meta.attr(name)
        if not a.updatable or a.generated is not None:
            raise ValidationError(f"{name} cannot be changed", field=name)
        if isinstance(value, Increment) and (
            a.kind not in NUMERIC_KINDS or (a.kind == "int" and not isinstance(value.by, int))
        ):
            raise ValidationError(
                f"{name}: Increment({value.by!r}) does not apply to {a.kind} values", field=name
            )
    return dict(changes)


def has_increments(changes: Mapping[str, Any]) -> bool:
    """Whether a (checked) patch holds an :class:`Increment`."""
    return any(type(v) is Increment for v in changes.values())


def resolve_increments(current: Any, changes: Mapping[str, Any]) -> Mapping[str, Any]:
    """``changes`` with each :class:`Increment` replaced by the value it gives on
    ``current`` (a missing value counts as 0)."""
    if not has_increments(changes):
        return changes
    resolved = dict(changes)
    for name, value in changes.items():
        if type(value) is Increment:
            base = getattr(current, name)
            resolved[name] = (0 if base is None else base) + value.by
    return resolved


def prepare_patch(
    meta: StoreMeta, current: Any, changes: Mapping[str, Any], now: dt.datetime
) -> Any:
    """``current`` with ``changes`` applied (values coerced), timestamps set, checked."""
    stamped = {a.name: now for a in meta.generated_or_fixed if a.generated == "updated"}
    if meta.ttl is not None and changes.get(meta.expires) is None:  # type: ignore[arg-type]
        stamped[meta.expires] = now + meta.ttl  # type: ignore[index]
    return meta.build(current, {**resolve_increments(current, changes), **stamped})
