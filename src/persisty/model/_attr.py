"""Attribute declarations: ``Attr(...)`` and the per-attribute metadata persisty derives."""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import enum
import math
import reprlib
import types
import typing
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import msgspec

from persisty.errors import ValidationError

Generated = Literal["uuid", "created", "updated", "sequence"]
GENERATORS: tuple[str, ...] = ("uuid", "created", "updated", "sequence")

# Kinds decide which filter ops an attribute accepts and how engines store it.
SCALAR_KINDS = frozenset(
    {"str", "int", "float", "bool", "datetime", "date", "uuid", "decimal", "bytes", "enum"}
)
ORDERED_KINDS = frozenset(
    {"str", "int", "float", "datetime", "date", "uuid", "decimal", "bytes", "enum"}
)


@dataclass(frozen=True, slots=True)
class AttrOptions:
    """What ``Attr()`` records in a dataclass field's metadata."""

    generated: Generated | None = None
    creatable: bool = True
    readable: bool = True
    updatable: bool = True
    sortable: bool = True
    description: str | None = None
    constraints: dict[str, Any] = dataclasses.field(default_factory=dict)
    expires: bool = False
    files: str | None = None
    on_delete: str = "keep"


ON_DELETE = ("delete", "keep", "block")


@dataclass(frozen=True, slots=True)
class FileRef:
    """What an item stores of a file: its ``key`` in a file store and the ``etag`` of the
    version it refers to. Declare it with ``Attr(files="avatars")``; served over HTTP it is
    shown with the file's size, type and a signed URL.

    Example::

        @stored
        class Profile:
            id: str
            avatar: FileRef | None = Attr(files="avatars", on_delete="delete")

        Profile(id="ann", avatar=FileRef(key="users/ann.png", etag="9f86d08…"))
    """

    key: str
    etag: str


_NO_DEFAULT: Any = dataclasses.MISSING


def Attr(
    default: Any = _NO_DEFAULT,
    *,
    default_factory: Callable[[], Any] | None = None,
    generated: Generated | None = None,
    creatable: bool = True,
    readable: bool = True,
    updatable: bool = True,
    sortable: bool = True,
    description: str | None = None,
    expires: bool = False,
    files: str | None = None,
    on_delete: Literal["delete", "keep", "block"] = "keep",
    min_length: int | None = None,
    max_length: int | None = None,
    pattern: str | None = None,
    ge: int | float | None = None,
    le: int | float | None = None,
    gt: int | float | None = None,
    lt: int | float | None = None,
) -> Any:
    """Declare an attribute of a ``@stored`` class with constraints, generators and flags.

    Constraints (``min_length``, ``max_length``, ``pattern``, ``ge``, ``le``, ``gt``, ``lt``)
    are checked on every write; ``generated`` is one of ``"uuid"``, ``"created"``,
    ``"updated"`` (UTC timestamps) or ``"sequence"`` (next integer). ``expires=True`` marks
    the ``datetime | None`` attribute that holds the instant the item expires: from then on
    the item is invisible to every read, search, count and write (NotFound) and its key can
    be created anew; ``@stored(ttl=...)`` defaults it to "write time + ttl".
    ``files="avatars"`` on a ``FileRef | None`` attribute names the file store it refers to
    (see ``app(files=...)``); ``on_delete`` says what deleting the item does to the file:
    ``"keep"`` it (the default), ``"delete"`` it, or ``"block"`` (409 while it exists).

    Example::

        @stored
        class Note:
            id: UUID
            title: str = Attr(max_length=200)
            created_at: datetime = Attr(generated="created")
    """
    if on_delete not in ON_DELETE:
        raise ValueError(f"on_delete must be one of {ON_DELETE}, not {on_delete!r}")
    if files is not None and default is _NO_DEFAULT and default_factory is None:
        default = None
    if generated is not None and generated not in GENERATORS:
        raise ValueError(f"generated must be one of {GENERATORS}, not {generated!r}")
    constraints = {
        k: v
        for k, v in {
            "min_length": min_length,
            "max_length": max_length,
            "pattern": pattern,
            "ge": ge,
            "le": le,
            "gt": gt,
            "lt": lt,
        }.items()
        if v is not None
    }
    options = AttrOptions(
        generated=generated,
        creatable=creatable,
        readable=readable,
        updatable=updatable,
        sortable=sortable,
        description=description,
        constraints=constraints,
        expires=expires,
        files=files,
        on_delete=on_delete,
    )
    if default is _NO_DEFAULT and default_factory is None and expires:
        default = None
    if default is _NO_DEFAULT and default_factory is None and generated is not None:
        default = None
    if default_factory is not None:
        return dataclasses.field(default_factory=default_factory, metadata={"persisty": options})
    return dataclasses.field(default=default, metadata={"persisty": options})


@dataclass(frozen=True, slots=True)
class AttrMeta:
    """Everything persisty knows about one attribute of a stored class."""

    name: str
    type: Any
    """The declared type without constraints (``str | None``, ``list[str]`` …)."""
    kind: str
    """str int float bool datetime date uuid decimal bytes enum list dict struct any."""
    optional: bool
    item_kind: str | None
    """For lists: the kind of the elements."""
    enum_type: type[enum.Enum] | None
    generated: str | None = None
    creatable: bool = True
    readable: bool = True
    updatable: bool = True
    sortable: bool = False
    required: bool = False
    description: str | None = None
    constraints: dict[str, Any] = dataclasses.field(default_factory=dict)
    expires: bool = False
    """Whether this attribute holds the item's expiry instant (``Attr(expires=True)``)."""
    files: str | None = None
    """The file store a ``FileRef`` attribute refers to (``Attr(files="avatars")``)."""
    on_delete: str = "keep"
    """What deleting the item does to its file: ``delete``, ``keep`` or ``block``."""

    @property
    def ordered(self) -> bool:
        """Whether ``<``, ``>``, ranges and ordering apply to this attribute."""
        return self.kind in ORDERED_KINDS

    def coerce(self, value: Any) -> Any:
        """Convert a JSON-ish value (``"2024-01-01"``, ``"3"``) to this attribute's type."""
        if value is None:
            return None
        if _EXACT.get(self.kind) is type(value):
            result = value
        else:
            try:
                result = _convert(value, self.type)
            except (
                msgspec.ValidationError,
                TypeError,
                ValueError,
                OverflowError,
                RecursionError,
            ) as e:
                raise ValidationError(
                    f"{self.name}: cannot use {_shown(value)} as {_type_name(self.type)}",
                    field=self.name,
                ) from e
        if (type(result) is float and not math.isfinite(result)) or (
            isinstance(result, decimal.Decimal) and not result.is_finite()
        ):
            raise ValidationError(
                f"{self.name}: {result!r} is not a finite number", field=self.name
            )
        return result

    def coerce_element(self, value: Any) -> Any:
        """Convert a value to this list attribute's element type."""
        args = typing.get_args(strip_optional(self.type)[0])
        try:
            return _convert(value, args[0] if args else Any)
        except (msgspec.ValidationError, TypeError, ValueError, OverflowError, RecursionError) as e:
            raise ValidationError(
                f"{self.name}: cannot use {_shown(value)} as an element", field=self.name
            ) from e


_EXACT: dict[str, type] = {
    "str": str,
    "int": int,
    "float": float,
    "bool": bool,
    "uuid": uuid.UUID,
    "decimal": decimal.Decimal,
    "date": dt.date,
}


def _convert(value: Any, tp: Any) -> Any:
    if isinstance(value, dt.datetime) and strip_optional(tp)[0] is dt.datetime:
        return to_utc(value)
    result = msgspec.convert(value, tp, strict=False)
    if isinstance(result, dt.datetime):
        return to_utc(result)
    return result


def to_utc(value: dt.datetime) -> dt.datetime:
    """Naive datetimes are taken as UTC; aware ones are converted to UTC."""
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    if value.utcoffset() == dt.timedelta(0) and value.tzinfo is dt.UTC:
        return value
    return value.astimezone(dt.UTC)


def _shown(value: Any) -> str:
    """``repr(value)``, cut short (a client's value may be megabytes long)."""
    text = reprlib.repr(value)
    return text


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp)


def strip_optional(tp: Any) -> tuple[Any, bool]:
    """``int | None`` -> ``(int, True)``; also unwraps ``Annotated``.

    Example::

        from persisty.model import strip_optional

        assert strip_optional(int | None) == (int, True)
    """
    if typing.get_origin(tp) is typing.Annotated:
        tp = typing.get_args(tp)[0]
    origin = typing.get_origin(tp)
    if origin is typing.Union or origin is types.UnionType:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        optional = len(args) != len(typing.get_args(tp))
        inner = args[0] if len(args) == 1 else typing.Union[tuple(args)]  # noqa: UP007
        return inner, optional
    return tp, False


def kind_of(tp: Any) -> tuple[str, str | None, type[enum.Enum] | None]:
    """Classify a type: (kind, element kind for lists, enum class)."""
    tp, _ = strip_optional(tp)
    origin = typing.get_origin(tp) or tp
    if origin in (list, tuple, set, frozenset):
        args = typing.get_args(tp)
        item = kind_of(args[0])[0] if args else "any"
        return "list", item, None
    if origin is dict:
        return "dict", None, None
    if isinstance(tp, type):
        if issubclass(tp, enum.Enum):
            return "enum", None, tp
        if issubclass(tp, bool):
            return "bool", None, None
        if issubclass(tp, int):
            return "int", None, None
        if issubclass(tp, float):
            return "float", None, None
        if issubclass(tp, str):
            return "str", None, None
        if issubclass(tp, dt.datetime):
            return "datetime", None, None
        if issubclass(tp, dt.date):
            return "date", None, None
        if issubclass(tp, uuid.UUID):
            return "uuid", None, None
        if issubclass(tp, decimal.Decimal):
            return "decimal", None, None
        if issubclass(tp, bytes | bytearray):
            return "bytes", None, None
        if dataclasses.is_dataclass(tp) or issubclass(tp, msgspec.Struct):
            return "struct", None, None
    return "any", None, None
