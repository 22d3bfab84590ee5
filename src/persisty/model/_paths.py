"""Paths into a stored item: ``location.city``, ``items[3].x`` or the JSON Pointer
``/extra/a.b`` (for dict keys that are not identifiers), checked against the declared types.

A path is parsed once per class and text (:func:`parse_path`), then used to read the value it
names (:meth:`ItemPath.get`) or to build the new top-level value with one value replaced
(:meth:`ItemPath.replace`); the item itself is never changed in place.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import re
import typing
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import msgspec

from persisty.errors import ValidationError
from persisty.model._attr import AttrMeta, kind_of, strip_optional, to_utc
from persisty.model._meta import StoreMeta, meta_of

Segment = str | int
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DOTTED_PART = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)((?:\[[0-9]{1,9}\])*)")
_INDEX = re.compile(r"\[([0-9]{1,9})\]")
MAX_DEPTH = 32


def is_path(name: str) -> bool:
    """Whether ``name`` is a path below a top-level attribute (not an attribute name).

    Example::

        assert is_path("address.city") and is_path("/extra/a.b") and not is_path("title")
    """
    return isinstance(name, str) and ("." in name or "[" in name or name.startswith("/"))


@dataclass(frozen=True, slots=True)
class ItemPath:
    """One checked path: ``segments`` are attribute names, dict keys (``str``) and list
    indexes (``int``); ``types[i]`` is the declared type of the value ``segments[i]`` is
    looked up in, ``type`` the declared type at the end.

    Example::

        p = parse_path(meta_of(Note), "address.city")
        item = Note(address=Address("Main St 1", "Osaka"))
        assert (p.root, p.text, p.get(item)) == ("address", "address.city", "Osaka")
        assert p.replace(item, "Tokyo") == Address("Main St 1", "Tokyo")
    """

    text: str
    segments: tuple[Segment, ...]
    types: tuple[Any, ...]
    type: Any

    @property
    def root(self) -> str:
        """The top-level attribute the path is in."""
        return str(self.segments[0])

    @property
    def numeric(self) -> bool:
        """Whether the value at this path is declared a number (``Increment`` applies)."""
        base = strip_optional(self.type)[0]
        return base in (int, float, decimal.Decimal)

    def get(self, item: Any) -> Any:
        """The value at this path in ``item`` (``None`` past a ``None``, a missing dict key
        or a list index beyond the end)."""
        return self.get_below(getattr(item, self.root, None))

    def get_below(self, root_value: Any) -> Any:
        """The value at this path below the top-level value ``root_value``."""
        value = root_value
        for seg in self.segments[1:]:
            if value is None:
                return None
            value = _child(value, seg)
        return value

    def coerce(self, value: Any) -> Any:
        """``value`` converted to the declared type at this path (``ValidationError`` naming
        the path when it does not fit)."""
        try:
            result = msgspec.convert(value, self.type, strict=False, from_attributes=True)
        except (msgspec.ValidationError, TypeError, ValueError) as e:
            raise ValidationError(f"{self.text}: {e}", field=self.text) from None
        return to_utc(result) if isinstance(result, dt.datetime) else result

    def replace(
        self, item: Any, value: Any, *, root_value: Any = None, use_root: bool = False
    ) -> Any:
        """The new value of the top-level attribute of ``item`` with ``value`` (already
        coerced) at this path; ``root_value`` (with ``use_root``) stands for the current
        top-level value (to apply several paths one after another)."""
        base = root_value if use_root else getattr(item, self.root)
        return self._set(base, 1, value)

    def _set(self, node: Any, i: int, value: Any) -> Any:
        if i == len(self.segments):
            return value
        seg = self.segments[i]
        if node is None:
            base = strip_optional(self.types[i])[0]
            if (typing.get_origin(base) or base) is dict:
                node = {}
            else:
                raise ValidationError(f"{self.text}: {self._prefix(i)} is None", field=self.text)
        if isinstance(node, dict):
            new = dict(node)
            new[seg] = self._set(node.get(seg), i + 1, value)
            return new
        if isinstance(node, list | tuple):
            assert isinstance(seg, int)
            if seg >= len(node):
                raise ValidationError(
                    f"{self.text}: {self._prefix(i)} has {len(node)} element(s)", field=self.text
                )
            items = list(node)
            items[seg] = self._set(node[seg], i + 1, value)
            return type(node)(items) if isinstance(node, tuple) else items
        assert isinstance(seg, str)
        child = self._set(getattr(node, seg), i + 1, value)
        if isinstance(node, msgspec.Struct):
            return msgspec.structs.replace(node, **{seg: child})
        return dataclasses.replace(node, **{seg: child})

    def _prefix(self, i: int) -> str:
        return _text(self.segments[:i])

    @property
    def leaf(self) -> AttrMeta:
        """The value at this path as an attribute named by the path (what filters check
        and coerce against): optional, since a ``None`` or missing parent gives ``None``."""
        return _leaf(self)


@lru_cache(maxsize=4096)
def _leaf(path: ItemPath) -> AttrMeta:
    kind, item_kind, enum_type = kind_of(path.type)
    return AttrMeta(
        name=path.text,
        type=path.type,
        kind=kind,
        optional=True,
        item_kind=item_kind,
        enum_type=enum_type,
    )  # the rest as declared by default: creatable, readable, updatable, not sortable


def _child(value: Any, seg: Segment) -> Any:
    if isinstance(value, dict):
        return value.get(seg)
    if isinstance(value, list | tuple):
        return value[seg] if isinstance(seg, int) and seg < len(value) else None
    return getattr(value, str(seg), None)


def _text(segments: tuple[Segment, ...]) -> str:
    """The canonical text of ``segments``: dotted when every name is an identifier, else a
    JSON Pointer."""
    if all(isinstance(s, int) or _NAME.fullmatch(s) for s in segments[1:]):
        out = str(segments[0])
        for s in segments[1:]:
            out += f"[{s}]" if isinstance(s, int) else f".{s}"
        return out
    return "".join("/" + str(s).replace("~", "~0").replace("/", "~1") for s in segments)


def _tokens(text: str) -> list[Segment]:
    """The raw segments of ``text`` (pointer segments stay text until the types say)."""
    if text.startswith("/"):
        return [p.replace("~1", "/").replace("~0", "~") for p in text[1:].split("/")]
    out: list[Segment] = []
    for part in text.split("."):
        m = _DOTTED_PART.fullmatch(part)
        if m is None:
            raise ValidationError(
                f"not a path: {text!r} (write a.b, items[3].x or a JSON "
                "Pointer such as /extra/a.b)",
                field=text,
            )
        out.append(m.group(1))
        out.extend(int(i) for i in _INDEX.findall(m.group(2)))
    return out


def _hints(tp: Any) -> dict[str, Any] | None:
    if dataclasses.is_dataclass(tp) or (isinstance(tp, type) and issubclass(tp, msgspec.Struct)):
        return typing.get_type_hints(tp)
    return None


def _step(text: str, done: tuple[Segment, ...], tp: Any, raw: Segment) -> tuple[Segment, Any]:
    """The segment ``raw`` as the declared type ``tp`` reads it, and the type it leads to."""
    base = strip_optional(tp)[0]
    origin = typing.get_origin(base) or base
    if base is Any or base is object:
        return raw, Any
    if origin in (list, tuple):
        if isinstance(raw, str) and not re.fullmatch(r"[0-9]{1,9}", raw):
            raise ValidationError(
                f"{text}: {_text(done)} is a list: name an element by its index", field=text
            )
        args = typing.get_args(base)
        return int(raw), (args[0] if args else Any)
    if origin is dict:
        args = typing.get_args(base)
        return str(raw), (args[1] if len(args) == 2 else Any)
    hints = _hints(base)
    if hints is None or raw not in hints:
        raise ValidationError(f"{text}: no attribute {raw!r} in {_text(done)}", field=text)
    return raw, hints[str(raw)]


@lru_cache(maxsize=4096)
def _parse(cls: type[Any], text: str) -> ItemPath:
    meta = meta_of(cls)
    if not isinstance(text, str) or not text or text == "/":
        raise ValidationError(f"not a path: {text!r}", field="path")
    raw = _tokens(text)
    if len(raw) > MAX_DEPTH:
        raise ValidationError(f"{text}: deeper than {MAX_DEPTH} levels", field=text)
    root = raw[0]
    if not isinstance(root, str) or root not in meta.by_name:
        raise ValidationError(f"{text}: {meta.name} has no attribute {root!r}", field=text)
    segments: list[Segment] = [root]
    types: list[Any] = [meta.cls]
    tp = meta.by_name[root].type
    for r in raw[1:]:
        types.append(tp)
        seg, tp = _step(text, tuple(segments), tp, r)
        segments.append(seg)
    return ItemPath(_text(tuple(segments)), tuple(segments), tuple(types), tp)


def parse_path(meta: StoreMeta, text: str) -> ItemPath:
    """The checked path ``text`` in ``meta``'s model; ``ValidationError`` naming it when the
    model has no such path.

    Example::

        assert parse_path(meta_of(Note), "/address/city").segments == ("address", "city")
        assert parse_path(meta_of(Note), "tags[2]").segments == ("tags", 2)
    """
    try:
        return _parse(meta.cls, text)  # type: ignore[arg-type]
    except TypeError:  # an unhashable "path"
        raise ValidationError(f"not a path: {text!r}", field="path") from None
