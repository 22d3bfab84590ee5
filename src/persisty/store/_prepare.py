"""Turning what a user passes into what is stored: generators, flags and validation."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from persisty.errors import ValidationError
from persisty.model import StoreMeta, is_path, meta_of, parse_path
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
    """Validate the names in a patch: known, updatable, not part of the key. A name may be
    a path below an attribute (``location.city``, ``items[3].x``, ``/extra/a.b``): its
    value is coerced to the declared type there, and the key is its canonical text."""
    if not isinstance(changes, Mapping):
        raise ValidationError("changes must be a mapping of attribute names to values")
    result: dict[str, Any] | None = None
    for name, value in changes.items():
        if name not in meta.by_name and is_path(name):
            result = _check_paths(meta, changes)
            break
        a = meta.attr(name)
        if not a.updatable or a.generated is not None:
            raise ValidationError(f"{name} cannot be changed", field=name)
        if isinstance(value, Increment) and (
            a.kind not in NUMERIC_KINDS or (a.kind == "int" and not isinstance(value.by, int))
        ):
            raise ValidationError(
                f"{name}: Increment({value.by!r}) does not apply to {a.kind} values", field=name
            )
    return dict(changes) if result is None else result


def _check_paths(meta: StoreMeta, changes: Mapping[str, Any]) -> dict[str, Any]:
    """:func:`check_changes` for a patch that names paths."""
    result: dict[str, Any] = {}
    seen: list[tuple[Any, ...]] = []
    for name, value in changes.items():
        if name in meta.by_name:
            result.update(check_changes(meta, {name: value}))
            segments: tuple[Any, ...] = (name,)
            text = name
        else:
            path = parse_path(meta, name)
            text, segments = path.text, path.segments
            a = meta.attr(path.root)
            if not a.updatable or a.generated is not None or path.root in meta.key.attrs:
                raise ValidationError(f"{path.root} cannot be changed", field=name)
            if isinstance(value, Increment):
                if not path.numeric or (
                    path.coerce(0).__class__ is int and not isinstance(value.by, int)
                ):
                    raise ValidationError(
                        f"{text}: Increment({value.by!r}) does not apply there", field=name
                    )
                result[text] = value
            else:
                result[text] = path.coerce(value)
        for other in seen:
            n = min(len(other), len(segments))
            if other[:n] == segments[:n]:
                raise ValidationError(
                    f"{text}: the patch changes it twice (it overlaps another path of the patch)",
                    field=name,
                )
        seen.append(segments)
    return result


def patched_attrs(changes: Iterable[str]) -> list[str]:
    """The top-level attributes a (checked) patch's names change, in order.

    Example::

        assert patched_attrs({"address.city": "x", "title": "t"}) == ["address", "title"]
    """
    return list(dict.fromkeys(_root_of(n) for n in changes))


def _root_of(name: str) -> str:
    if name.startswith("/"):
        return name[1:].split("/", 1)[0].replace("~1", "/").replace("~0", "~")
    return name.split(".", 1)[0].split("[", 1)[0]


def has_increments(changes: Mapping[str, Any]) -> bool:
    """Whether a (checked) patch holds an :class:`Increment` (or a path, which is resolved
    against the stored item the same way)."""
    return any(type(v) is Increment or is_path(k) for k, v in changes.items())


def resolve_increments(current: Any, changes: Mapping[str, Any]) -> Mapping[str, Any]:
    """``changes`` with each :class:`Increment` replaced by the value it gives on
    ``current`` (a missing value counts as 0), and the paths below an attribute turned
    into that attribute's new value."""
    if not has_increments(changes):
        return changes
    resolved: dict[str, Any] = {}
    meta = None
    for name, value in changes.items():
        if is_path(name):
            meta = meta or meta_of(type(current))
            path = parse_path(meta, name)
            root = path.root
            base = resolved[root] if root in resolved else getattr(current, root)
            if type(value) is Increment:
                at = path.get_below(base)
                value = (0 if at is None else at) + value.by
            resolved[root] = path.replace(current, value, root_value=base, use_root=True)
        elif type(value) is Increment:
            base = getattr(current, name)
            resolved[name] = (0 if base is None else base) + value.by
        else:
            resolved[name] = value
    return resolved


def prepare_patch(
    meta: StoreMeta, current: Any, changes: Mapping[str, Any], now: dt.datetime
) -> Any:
    """``current`` with ``changes`` applied (values coerced), timestamps set, checked."""
    stamped = {a.name: now for a in meta.generated_or_fixed if a.generated == "updated"}
    if meta.ttl is not None and changes.get(meta.expires) is None:  # type: ignore[arg-type]
        stamped[meta.expires] = now + meta.ttl  # type: ignore[index]
    return meta.build(current, {**resolve_increments(current, changes), **stamped})
