"""``@stored``: turns a class into a slotted dataclass and derives its :class:`StoreMeta`."""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime as dt
import decimal
import functools
import hashlib
import inspect
import math
import operator
import re
import sys
import typing
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, dataclass_transform, overload

import msgspec

from persisty.errors import IntegrityError, ValidationError
from persisty.model._attr import (
    Attr,
    AttrMeta,
    AttrOptions,
    FileRef,
    kind_of,
    strip_optional,
    to_utc,
)

T = TypeVar("T")

_ENCODER = msgspec.json.Encoder(order="deterministic")


@dataclass(frozen=True, slots=True)
class Index:
    """A secondary index over one or more attributes; ``unique=True`` enforces uniqueness.

    Example::

        @stored(indexes=[Index("owner", "priority"), Index("email", unique=True)])
        class User:
            id: str
            owner: str
            email: str
            priority: int = 0
    """

    attrs: tuple[str, ...]
    unique: bool = False
    name: str | None = None

    def __init__(self, *attrs: str, unique: bool = False, name: str | None = None) -> None:
        if not attrs:
            raise ValueError("an Index needs at least one attribute")
        object.__setattr__(self, "attrs", tuple(attrs))
        object.__setattr__(self, "unique", unique)
        object.__setattr__(self, "name", name)

    def index_name(self, store_name: str) -> str:
        """The index's name: given, or derived from the store and its attributes."""
        return self.name or "ix_" + store_name + "_" + "_".join(self.attrs)


@dataclass(frozen=True, slots=True)
class KeyConfig:
    """How an item's key string is derived from its attributes.

    One attribute gives the attribute's text (``str(uuid)``, ``"42"``); several are joined
    with ``:``, where ``~`` and ``:`` inside values are escaped as ``~0`` and ``~1``.

    Example::

        @stored(key=("owner", "slug"))
        class Home:
            owner: str
            slug: str

        connect("memory://").store(Home).key_of(Home(owner="ann", slug="home"))  # "ann:home"
    """

    attrs: tuple[str, ...]

    def __init__(self, *attrs: str) -> None:
        if not attrs:
            raise ValueError("a key needs at least one attribute")
        object.__setattr__(self, "attrs", tuple(attrs))


def _escape(part: str) -> str:
    return part.replace("~", "~0").replace(":", "~1")


def _unescape(part: str) -> str:
    return part.replace("~1", ":").replace("~0", "~")


def key_text(value: Any) -> str:
    """One key value as the text of a key string (before escaping ``:`` of composite keys)."""
    if isinstance(value, str):
        return value
    if isinstance(value, dt.datetime):
        return to_utc(value).isoformat()
    if hasattr(value, "value") and not isinstance(value, int | float):  # enums
        return str(value.value)
    if isinstance(value, bytes):
        return base64.urlsafe_b64encode(value).decode()
    return str(value)


@dataclass(frozen=True, slots=True, eq=False)
class StoreMeta:
    """Everything persisty derived from a ``@stored`` class: attributes, key, indexes, schemas.

    Example::

        meta = Note.__persisty__          # or persisty.meta_of(Note)
        meta.name, meta.key.attrs, [a.name for a in meta.attrs]
    """

    cls: type[Any]
    name: str
    attrs: tuple[AttrMeta, ...]
    key: KeyConfig
    indexes: tuple[Index, ...]
    label: str | None
    summary: tuple[str, ...]
    ttl: dt.timedelta | None
    description: str | None
    by_name: dict[str, AttrMeta] = dataclasses.field(default_factory=dict)
    datetime_attrs: tuple[str, ...] = ()
    _values: Any = None
    _decoder: Any = None
    _many_decoder: Any = None
    _key_parsers: tuple[Callable[[str], Any], ...] = ()
    generated_or_fixed: tuple[AttrMeta, ...] = ()
    """Attributes the store sets itself: generated, not creatable or not updatable."""
    set_on_create: tuple[AttrMeta, ...] = ()
    """Attributes the store sets on create: generated or not creatable."""
    sequence_attrs: tuple[str, ...] = ()
    """Attributes numbered by the store (``Attr(generated="sequence")``)."""
    number_attrs: tuple[str, ...] = ()
    """Float and decimal attributes: their values must be finite."""
    expires: str | None = None
    """The attribute holding the item's expiry instant (``Attr(expires=True)``), if any."""

    def __post_init__(self) -> None:
        self.by_name.update({a.name: a for a in self.attrs})
        set_ = object.__setattr__
        set_(self, "datetime_attrs", tuple(a.name for a in self.attrs if a.kind == "datetime"))
        names = [a.name for a in self.attrs]
        getter = operator.attrgetter(*names)
        if len(names) == 1:
            set_(self, "_values", lambda item: (getter(item),))
        else:
            set_(self, "_values", getter)
        set_(self, "_decoder", msgspec.json.Decoder(self.cls))
        set_(self, "_many_decoder", msgspec.json.Decoder(list[self.cls]))  # type: ignore[name-defined]
        set_(self, "_key_parsers", tuple(_key_parser(self.by_name[k]) for k in self.key.attrs))
        set_(
            self,
            "generated_or_fixed",
            tuple(a for a in self.attrs if a.generated or not a.creatable or not a.updatable),
        )
        set_(self, "sequence_attrs", tuple(a.name for a in self.attrs if a.generated == "sequence"))
        set_(self, "set_on_create", tuple(a for a in self.attrs if a.generated or not a.creatable))
        set_(
            self,
            "number_attrs",
            tuple(a.name for a in self.attrs if a.kind in ("float", "decimal")),
        )
        set_(self, "expires", next((a.name for a in self.attrs if a.expires), None))

    # ---- attributes -------------------------------------------------------------------

    def attr(self, name: str) -> AttrMeta:
        """The attribute called ``name``; ``ValidationError`` naming it when there is none."""
        try:
            return self.by_name[name]
        except KeyError:
            raise ValidationError(f"{self.name} has no attribute {name!r}", field=name) from None

    @property
    def key_attrs(self) -> tuple[AttrMeta, ...]:
        """The attributes that make up the key, in key order."""
        return tuple(self.by_name[n] for n in self.key.attrs)

    # ---- keys -------------------------------------------------------------------------

    def key_values(self, item: Any) -> tuple[Any, ...]:
        """The typed values of the key attributes of ``item``."""
        return tuple(getattr(item, n) for n in self.key.attrs)

    def key_of(self, item: Any) -> str:
        """The key string of ``item``."""
        return self.key_string(self.key_values(item))

    def key_string(self, values: Sequence[Any]) -> str:
        """The key string for typed key values."""
        if len(values) == 1:
            return key_text(values[0])
        return ":".join(_escape(key_text(v)) for v in values)

    def parse_key(self, key: Any) -> tuple[Any, ...]:
        """Typed key values from a key string; ``ValidationError`` naming the key attribute."""
        attrs = self.key_attrs
        if not isinstance(key, str):
            if len(attrs) == 1 and not isinstance(key, tuple | list | dict | set):
                key = key_text(key)
            else:
                raise ValidationError(
                    f"a key must be a string, not {type(key).__name__}", field=attrs[0].name
                )
        if len(attrs) == 1:
            parts = [key]
        else:
            parts = [_unescape(p) for p in key.split(":")]
            if len(parts) != len(attrs):
                raise ValidationError(
                    f"key {key!r} must have {len(attrs)} parts separated by ':'",
                    field=attrs[0].name,
                )
        values = []
        for a, parse, part in zip(attrs, self._key_parsers, parts, strict=True):
            if part == "":
                raise ValidationError(f"{a.name}: a key part may not be empty", field=a.name)
            try:
                values.append(parse(part))
            except (ValueError, TypeError) as e:
                raise ValidationError(f"{a.name}: {part!r} is not a valid key", field=a.name) from e
        return tuple(values)

    # ---- items ------------------------------------------------------------------------

    def to_builtins(self, item: Any) -> dict[str, Any]:
        """``item`` as JSON-compatible builtins (what the REST API sends)."""
        result: dict[str, Any] = msgspec.to_builtins(item)
        return result

    def from_builtins(self, data: Any) -> Any:
        """An item from JSON-compatible data, validated; ``ValidationError`` names the field."""
        if isinstance(data, self.cls):
            return self.validate(data)
        if not isinstance(data, Mapping):
            raise ValidationError(f"{self.name}: expected an object, got {type(data).__name__}")
        unknown = [k for k in data if k not in self.by_name]
        if unknown:
            raise ValidationError(f"{self.name} has no attribute {unknown[0]!r}", field=unknown[0])
        return self._convert(dict(data))

    def validate(self, item: Any) -> Any:
        """Check every attribute of ``item`` and return a normalized copy (UTC datetimes …)."""
        if isinstance(item, Mapping):
            return self.from_builtins(item)
        if not isinstance(item, self.cls):
            raise ValidationError(f"expected a {self.cls.__name__}, got {type(item).__name__}")
        return self.build(item)

    def build(self, base: Any, changes: Mapping[str, Any] | None = None) -> Any:
        """A new, checked and normalized item: ``base``'s values with ``changes`` applied.

        Values go through the same JSON path as stored data, so what is returned is exactly
        what a backend will give back (datetimes in UTC, ints where floats are declared …).
        """
        source = self._source(base, changes)
        if self.number_attrs:
            self._check_finite(source)
        try:
            item = self._decoder.decode(_ENCODER.encode(source))
        except msgspec.ValidationError as e:
            raise _validation_error(self, e) from None
        except (msgspec.EncodeError, TypeError, OverflowError) as e:
            raise ValidationError(f"{self.name}: {e}") from None
        except RecursionError:
            raise ValidationError(f"{self.name}: a value is nested too deeply") from None
        if self.number_attrs:
            self._check_finite(item)
        return self._normalize(item)

    def build_many(
        self, bases: Sequence[Any], changes: Sequence[Mapping[str, Any] | None] | None = None
    ) -> list[Any]:
        """:meth:`build` for many items: the same results, in one validation pass.

        ``changes``, when given, has one entry per item. The first invalid item raises the
        same ``ValidationError`` that :meth:`build` gives for it.
        """
        if changes is None:
            # the items encode as themselves: no per-item dict is needed
            sources: Sequence[Any] = bases
        else:
            sources = [self._source(b, c) for b, c in zip(bases, changes, strict=True)]
        try:
            if self.number_attrs:
                for source in sources:
                    self._check_finite(source)
            items: list[Any] = self._many_decoder.decode(_ENCODER.encode(sources))
            if self.number_attrs:
                for item in items:
                    self._check_finite(item)
        except (
            msgspec.ValidationError,
            msgspec.EncodeError,
            TypeError,
            OverflowError,
            RecursionError,
            ValidationError,
        ):
            for b, c in zip(bases, changes or [None] * len(bases), strict=True):
                self.build(b, c)  # raises the error of the first bad item, naming its field
            raise
        if self.datetime_attrs:
            for item in items:
                self._normalize(item)
        return items

    def _source(self, base: Any, changes: Mapping[str, Any] | None) -> Any:
        if not changes and type(base) is self.cls:
            return base
        data = dict(zip(self.by_name, self._values(base), strict=True))
        if changes:
            data.update(changes)
        return data

    def _convert(self, data: dict[str, Any]) -> Any:
        try:
            item = msgspec.convert(data, self.cls, strict=False)
        except msgspec.ValidationError as e:
            raise _validation_error(self, e) from None
        except RecursionError:
            raise ValidationError(f"{self.name}: a value is nested too deeply") from None
        if self.number_attrs:
            self._check_finite(item)
        return self._normalize(item)

    def _check_finite(self, source: Any) -> None:
        """NaN and infinities are refused: JSON cannot hold them (a float would come back
        as null), engines store them differently or not at all, and they do not order."""
        get = source.get if isinstance(source, Mapping) else functools.partial(getattr, source)
        for name in self.number_attrs:
            value = get(name, None)
            if (type(value) is float and not math.isfinite(value)) or (
                isinstance(value, decimal.Decimal) and not value.is_finite()
            ):
                raise ValidationError(
                    f"{self.name}.{name}: {value!r} is not a finite number", field=name
                )

    def _normalize(self, item: Any) -> Any:
        for a in self.datetime_attrs:
            value = getattr(item, a)
            if value is not None and value.tzinfo is not dt.UTC:
                try:
                    object.__setattr__(item, a, to_utc(value))
                except OverflowError:
                    raise ValidationError(
                        f"{self.name}.{a}: {value.isoformat()} is outside the range of "
                        "UTC datetimes",
                        field=a,
                    ) from None
        return item

    def encode(self, item: Any) -> bytes:
        """Canonical JSON bytes of ``item`` (dict keys sorted): what etags hash."""
        return _ENCODER.encode(item)

    def encode_many(self, items: Sequence[Any]) -> list[bytes]:
        """:meth:`encode` of each item, in one encoder call (JSON never holds a raw
        newline, so the lines split exactly)."""
        raws = _ENCODER.encode_lines(items).split(b"\n")
        raws.pop()
        return raws

    def decode(self, data: bytes | str) -> Any:
        """An item from :meth:`encode`'s bytes; ``IntegrityError`` when the stored data does
        not fit the model (say, a required attribute was added without a default)."""
        try:
            return self._decoder.decode(data)
        except (msgspec.ValidationError, msgspec.DecodeError) as e:
            raise IntegrityError(
                f"a stored {self.name} does not fit the model ({e}); migrate or rewrite it"
            ) from None

    # ---- schema -----------------------------------------------------------------------

    def json_schema(self, shape: str = "read") -> dict[str, Any]:
        """JSON Schema of the ``read``, ``create``, ``update`` or ``patch`` shape.

        ``create`` leaves out generated and non-creatable attributes and requires only what
        has no default; ``update`` leaves out non-updatable ones; ``patch`` requires nothing.
        """
        (defs,) = [msgspec.json.schema_components([self.cls])[1]]
        full = dict(defs[self.cls.__name__])
        given = full.get("properties", {})
        # the declared order (msgspec lists the required attributes first)
        props = {a.name: given[a.name] for a in self.attrs if a.name in given}
        required = list(full.get("required", []))
        if shape == "read":
            props = {k: v for k, v in props.items() if self.by_name[k].readable}
            required = [a.name for a in self.attrs if a.readable]
        elif shape == "create":
            props = {
                k: v
                for k, v in props.items()
                if self.by_name[k].creatable
                and self.by_name[k].generated not in ("created", "updated", "sequence")
            }
            required = [r for r in required if r in props]
        elif shape == "update":
            props = {
                k: v for k, v in props.items() if self.by_name[k].updatable or k in self.key.attrs
            }
            required = [r for r in required if r in props]
        elif shape == "patch":
            props = {
                k: v
                for k, v in props.items()
                if self.by_name[k].updatable and k not in self.key.attrs
            }
            required = []
        else:
            raise ValueError(f"unknown shape {shape!r}")
        props = {k: _with_datetime_format(v, self.by_name[k]) for k, v in props.items()}
        schema: dict[str, Any] = {
            "title": f"{self.cls.__name__}{'' if shape == 'read' else shape.capitalize()}",
            "type": "object",
            "properties": props,
            "additionalProperties": False,
        }
        if required:
            schema["required"] = required
        nested = {k: v for k, v in defs.items() if k != self.cls.__name__}
        if nested:
            schema["$defs"] = nested
        if self.description:
            schema["description"] = self.description
        return schema


def _with_datetime_format(schema: dict[str, Any], attr: AttrMeta) -> dict[str, Any]:
    # msgspec leaves "format" off datetimes because it also accepts strings without an
    # offset (read as UTC); clients and validators of the schema should send RFC 3339.
    # Generated timestamps are left as msgspec describes them: the store sets them, so a
    # client that sends one back is not held to a format.
    if attr.generated or (attr.kind != "datetime" and attr.item_kind != "datetime"):
        return schema

    def mark(node: Any) -> Any:
        if not isinstance(node, dict):
            return node
        out = dict(node)
        if out.get("type") == "string" and "format" not in out:
            out["format"] = "date-time"
        if "anyOf" in out:
            out["anyOf"] = [mark(n) for n in out["anyOf"]]
        if "items" in out:
            out["items"] = mark(out["items"])
        return out

    return dict(mark(schema))


_KEEP = (dt.datetime, dt.date, uuid.UUID, bytes)

_PATH = re.compile(r"at `\$\.([A-Za-z_][A-Za-z_0-9]*)")
_MISSING = re.compile(r"missing required field `([^`]+)`")


def _validation_error(meta: StoreMeta, e: msgspec.ValidationError) -> ValidationError:
    text = str(e)
    m = _PATH.search(text) or _MISSING.search(text)
    field = m.group(1) if m else None
    reason = text.split(" - at ")[0]
    where = f"{meta.name}.{field}" if field else meta.name
    return ValidationError(f"{where}: {reason}", field=field)


def _key_parser(a: AttrMeta) -> Callable[[str], Any]:
    if a.kind == "str":
        return str
    if a.kind == "uuid":
        return uuid.UUID
    if a.kind == "int":

        def parse_int(text: str) -> int:
            if not _INT.fullmatch(text):
                raise ValueError(text)
            return int(text)

        return parse_int
    if a.kind == "bytes":
        return lambda text: base64.urlsafe_b64decode(text.encode())

    def parse_other(text: str) -> Any:
        try:
            return a.coerce(text)
        except ValidationError as e:
            raise ValueError(str(e)) from None

    return parse_other


_INT = re.compile(r"-?[0-9]+")


def etag(item: Any) -> str:
    """The etag of an item: a hash of its canonical stored content.

    Example::

        notes.update(dataclasses.replace(n, title="Hi"), if_match=etag(n))
    """
    return etag_of(_ENCODER.encode(item))


_URLSAFE = bytes.maketrans(b"+/", b"-_")


def etag_of(raw: bytes) -> str:
    """The etag of an item from its canonical JSON (:meth:`StoreMeta.encode`), so a backend
    that encodes the item anyway does not encode it twice."""
    digest = hashlib.blake2b(raw, digest_size=12).digest()
    return binascii.b2a_base64(digest, newline=False).translate(_URLSAFE).decode()


def etags_of(raws: Sequence[bytes]) -> list[str]:
    """:func:`etag_of` of each document: 12-byte digests encode to 16 characters without
    padding, so one base64 pass over all of them, cut every 16, gives the same etags."""
    blake2b = hashlib.blake2b
    digests = b"".join([blake2b(raw, digest_size=12).digest() for raw in raws])
    text = binascii.b2a_base64(digests, newline=False).translate(_URLSAFE).decode()
    return [text[i : i + 16] for i in range(0, len(text), 16)]


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
) -> Any:
    """Make a class a stored item: a slotted, keyword-only dataclass with a :class:`StoreMeta`.

    The key is ``key`` (one attribute or several), else the attribute ``id``. A ``UUID`` key
    without a default gets a fresh ``uuid4`` when absent. ``name`` defaults to the class
    name in snake_case; ``label``/``summary`` name the attributes that describe an item.

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
        return _make_stored(c, key, tuple(indexes), name, label, tuple(summary), ttl, caller)

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


def meta_of(cls_or_item: Any) -> StoreMeta:
    """The :class:`StoreMeta` of a ``@stored`` class or item.

    Example::

        meta_of(Note).name == "note"
    """
    meta = getattr(cls_or_item, "__persisty__", None)
    if not isinstance(meta, StoreMeta):
        raise TypeError(f"{cls_or_item!r} is not a @stored class")
    return meta
