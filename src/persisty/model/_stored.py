"""``@stored``: turns a class into a slotted dataclass and derives its :class:`StoreMeta`."""

from __future__ import annotations

import dataclasses
import datetime as dt
import inspect
import re
import sys
import typing
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar, dataclass_transform, overload

import msgspec

from persisty.model._attr import Attr, AttrMeta, AttrOptions, FileRef, kind_of, strip_optional
from persisty.model._keys import Index, KeyConfig
from persisty.model._meta import StoreMeta

T = TypeVar("T")


def _snake(name: str) -> str:
    s = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", s).lower()


@overload
@dataclass_transform(kw_only_default=True, field_specifiers=(Attr, dataclasses.field))
def stored(cls: type[T], /) -> type[T]: ...


@overload
@dataclass_transform(kw_only_default=True, field_specifiers=(Attr, dataclasses.field))
def stored(
    *,
    key: str | Sequence[str] | None = None,
    indexes: Iterable[Index] = (),
    name: str | None = None,
    label: str | None = None,
    summary: Sequence[str] = (),
    ttl: dt.timedelta | None = None,
    clustered: bool = False,
) -> Callable[[type[T]], type[T]]: ...


@dataclass_transform(kw_only_default=True, field_specifiers=(Attr, dataclasses.field))
def stored(
    cls: type[T] | None = None,
    /,
    *,
    key: str | Sequence[str] | None = None,
    indexes: Iterable[Index] = (),
    name: str | None = None,
    label: str | None = None,
    summary: Sequence[str] = (),
    ttl: dt.timedelta | None = None,
    clustered: bool = False,
) -> Any:
    """Make a class a stored item: a slotted, keyword-only dataclass with a :class:`StoreMeta`.

    The key is ``key`` (one attribute or several), else the attribute ``id``. A ``UUID`` key
    without a default gets a fresh ``uuid4`` when absent. ``name`` defaults to the class
    name in snake_case; ``label``/``summary`` name the attributes that describe an item.
    ``clustered=True`` asks the engine to keep the rows themselves in key order (SQLite
    ``WITHOUT ROWID``; InnoDB always does, the other engines ignore it): a point read or a
    key-ordered scan is one B-tree walk instead of two, and a write in key order appends.
    It suits small rows with a composite key, such as the points of a time series; rows of
    more than a few hundred bytes are better left in a rowid table.

    Example::

        @stored(indexes=[Index("owner")])
        class Note:
            id: UUID
            owner: str
            title: str = Attr(max_length=200)

        Note(owner="ann", title="Hello").id   # a fresh uuid4
    """

    def wrap(c: type[T]) -> type[T]:
        caller = sys._getframe(1 if cls is None else 2).f_locals
        return _make_stored(
            c, key, tuple(indexes), name, label, tuple(summary), ttl, caller, clustered
        )

    return wrap(cls) if cls is not None else wrap


def _make_stored(
    cls: type[Any],
    key: str | Sequence[str] | None,
    indexes: tuple[Index, ...],
    name: str | None,
    label: str | None,
    summary: tuple[str, ...],
    ttl: dt.timedelta | None,
    localns: Mapping[str, Any],
    clustered: bool = False,
) -> type[Any]:
    module = sys.modules.get(cls.__module__)
    globalns = dict(vars(module)) if module else {}
    raw = inspect.get_annotations(cls)
    own = typing.get_type_hints(cls, globalns=globalns, localns=dict(localns), include_extras=True)
    # the bases' attributes first, in dataclass order; the class's own may redeclare them
    hints, inherited = _inherited(cls)
    hints.update({k: v for k, v in own.items() if k in raw})
    for attr_name, field in inherited.items():
        if attr_name not in raw and attr_name not in cls.__dict__:
            setattr(cls, attr_name, field)
    key_attrs: tuple[str, ...]
    if key is None:
        if "id" not in hints:
            raise TypeError(f"{cls.__name__}: declare key=... or an attribute named 'id'")
        key_attrs = ("id",)
    elif isinstance(key, str):
        key_attrs = (key,)
    else:
        key_attrs = tuple(key)
    for k in key_attrs:
        if k not in hints:
            raise TypeError(f"{cls.__name__}: key attribute {k!r} is not declared")

    annotations: dict[str, Any] = {}
    options: dict[str, AttrOptions] = {}
    for attr_name, tp in hints.items():
        default = cls.__dict__.get(attr_name, dataclasses.MISSING)
        opts = AttrOptions()
        if isinstance(default, dataclasses.Field):
            opts = default.metadata.get("persisty", opts)
        base, _optional = strip_optional(tp)
        kind = kind_of(base)[0]
        if (
            attr_name in key_attrs
            and len(key_attrs) == 1
            and kind == "uuid"
            and (default is dataclasses.MISSING)
        ):
            opts = dataclasses.replace(opts, generated="uuid")
            setattr(
                cls,
                attr_name,
                dataclasses.field(default_factory=uuid.uuid4, metadata={"persisty": opts}),
            )
        elif (
            opts.generated == "uuid"
            and isinstance(default, dataclasses.Field)
            and (default.default is None)
        ):
            setattr(
                cls,
                attr_name,
                dataclasses.field(default_factory=uuid.uuid4, metadata={"persisty": opts}),
            )
        options[attr_name] = opts
        if opts.constraints:
            tp = _constrained(tp, opts.constraints)
        annotations[attr_name] = tp
    description = (cls.__doc__ or "").strip() or None
    cls.__annotations__ = annotations
    dc = dataclasses.dataclass(slots=True, kw_only=True)(cls)

    attrs = []
    for f in dataclasses.fields(dc):
        opts = options[f.name]
        declared = hints[f.name]
        if typing.get_origin(declared) is typing.Annotated:
            declared = typing.get_args(declared)[0]
        base, optional = strip_optional(declared)
        kind, item_kind, enum_type = kind_of(base)
        has_default = f.default is not dataclasses.MISSING or (
            f.default_factory is not dataclasses.MISSING
        )
        attrs.append(
            AttrMeta(
                name=f.name,
                type=declared,
                kind=kind,
                optional=optional,
                item_kind=item_kind,
                enum_type=enum_type,
                generated=opts.generated,
                creatable=opts.creatable,
                readable=opts.readable,
                updatable=opts.updatable and f.name not in key_attrs,
                sortable=opts.sortable,
                required=not has_default and opts.generated is None,
                description=opts.description,
                constraints=opts.constraints,
                expires=opts.expires,
                files=opts.files,
                on_delete=opts.on_delete,
            )
        )
        if opts.files is not None and base is not FileRef:
            raise TypeError(
                f"{cls.__name__}.{f.name}: Attr(files=...) is for a FileRef | None attribute"
            )
    _check_expiry(cls.__name__, attrs, key_attrs, ttl)
    by_name = {a.name for a in attrs}
    for ix in indexes:
        for a in ix.attrs:
            if a not in by_name:
                raise TypeError(f"{cls.__name__}: index attribute {a!r} is not declared")
    meta = StoreMeta(
        cls=dc,
        name=name or _snake(cls.__name__),
        attrs=tuple(attrs),
        key=KeyConfig(*key_attrs),
        indexes=indexes,
        label=label,
        summary=summary,
        ttl=ttl,
        description=description,
        clustered=clustered,
    )
    dc.__persisty__ = meta
    return dc


def _inherited(cls: type[Any]) -> tuple[dict[str, Any], dict[str, dataclasses.Field[Any]]]:
    """The attributes ``cls`` inherits, as dataclasses collects them (bases in reverse MRO
    order, a later base's declaration of a name replacing an earlier one's in place): their
    types and a fresh field each (default, factory and ``Attr`` options) for ``cls``.

    Bases may be ``@stored`` classes, dataclasses or plain classes with annotations."""
    hints: dict[str, Any] = {}
    fields: dict[str, dataclasses.Field[Any]] = {}
    for base in reversed(cls.__mro__[1:]):
        if base is object:
            continue
        meta = base.__dict__.get("__persisty__")
        if isinstance(meta, StoreMeta):
            for f in dataclasses.fields(base):
                hints[f.name] = meta.by_name[f.name].type
                fields[f.name] = _copy_field(f)
            continue
        own = inspect.get_annotations(base)
        if not own:
            continue
        module = sys.modules.get(base.__module__)
        base_hints = typing.get_type_hints(
            base, globalns=dict(vars(module)) if module else {}, include_extras=True
        )
        is_dataclass = "__dataclass_fields__" in base.__dict__
        declared = {f.name: f for f in dataclasses.fields(base)} if is_dataclass else {}
        for name in own:
            if typing.get_origin(base_hints.get(name)) is typing.ClassVar or (
                name not in base_hints or (is_dataclass and name not in declared)
            ):
                continue  # a ClassVar (or a dataclass's InitVar) is no attribute
            if name in declared:
                fields[name] = _copy_field(declared[name])
            else:
                value = base.__dict__.get(name, dataclasses.MISSING)
                if isinstance(value, dataclasses.Field):
                    fields[name] = _copy_field(value)
                else:
                    fields[name] = dataclasses.field(default=value)
            hints[name] = base_hints[name]
    return hints, fields


def _copy_field(f: dataclasses.Field[Any]) -> dataclasses.Field[Any]:
    new: dataclasses.Field[Any] = dataclasses.field(
        default=f.default, default_factory=f.default_factory, metadata=f.metadata
    )
    return new


def _constrained(tp: Any, constraints: dict[str, Any]) -> Any:
    """``tp`` with ``constraints``; on an optional type they apply to the value when it is
    not ``None`` (``int | None`` with ``ge=0`` accepts ``None`` and ``0``, not ``-1``)."""
    inner, optional = strip_optional(tp)
    constrained: Any = typing.Annotated[inner, msgspec.Meta(**constraints)]
    return typing.Optional[constrained] if optional else constrained  # noqa: UP045


def _check_expiry(
    cls_name: str, attrs: Sequence[AttrMeta], key_attrs: Sequence[str], ttl: dt.timedelta | None
) -> None:
    marked = [a for a in attrs if a.expires]
    if len(marked) > 1:
        raise TypeError(f"{cls_name}: only one attribute can be Attr(expires=True)")
    for a in marked:
        if (
            a.kind != "datetime"
            or not a.optional
            or a.generated is not None
            or (a.name in key_attrs)
        ):
            raise TypeError(
                f"{cls_name}.{a.name}: Attr(expires=True) needs a "
                "`datetime | None` attribute that is neither generated nor a key"
            )
    if ttl is not None:
        if not isinstance(ttl, dt.timedelta) or ttl <= dt.timedelta(0):
            raise TypeError(f"{cls_name}: ttl must be a positive timedelta")
        if not marked:
            raise TypeError(
                f"{cls_name}: ttl needs an attribute that holds the expiry, e.g. "
                "`expires_at: datetime | None = Attr(expires=True)`"
            )
