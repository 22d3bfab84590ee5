""":class:`StoreMeta`: what persisty knows of a stored class, and :func:`meta_of`."""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import functools
import math
import operator
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec

from persisty.errors import IntegrityError, ValidationError
from persisty.model._attr import AttrMeta, to_utc
from persisty.model._etag import _ENCODER
from persisty.model._keys import Index, KeyConfig, _escape, _key_parser, _unescape, key_text


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
    clustered: bool = False
    """Rows kept in key order by the engine (``@stored(clustered=True)``)."""

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


def meta_of(cls_or_item: Any) -> StoreMeta:
    """The :class:`StoreMeta` of a ``@stored`` class or item.

    Example::

        meta_of(Note).name == "note"
    """
    meta = getattr(cls_or_item, "__persisty__", None)
    if not isinstance(meta, StoreMeta):
        raise TypeError(f"{cls_or_item!r} is not a @stored class")
    return meta
