"""Encrypted paths: their grammar (``a.b``, ``items[].x``, ``extra.*``, JSON Pointer), their
walk through the model's types, and the storage model that holds their ciphertexts."""

from __future__ import annotations

import dataclasses
import json
import re
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import msgspec

from persisty.errors import ValidationError
from persisty.layers._derived import redeclared
from persisty.model import AttrOptions, meta_of, stored, strip_optional


@dataclass(frozen=True, slots=True)
class FieldPath:
    """One encrypted path: ``segments`` are attribute/dict names and ``"[]"`` (each list
    element); ``slot`` is how the ciphertext is held in the stored item (``str``/``bytes``)."""

    text: str
    segments: tuple[str, ...]
    deterministic: bool
    slot: str
    leaf: Any

    @property
    def attr(self) -> str:
        """The top-level attribute the path is in."""
        return self.segments[0]

    @property
    def whole(self) -> bool:
        """The path is a whole top-level attribute."""
        return len(self.segments) == 1

    @property
    def elements(self) -> bool:
        """The path is each element of a top-level list attribute (``tags[]``)."""
        return self.segments[1:] == ("[]",)


def split_path(path: str) -> list[str]:
    if not isinstance(path, str) or not path:
        raise ValidationError(f"not a field path: {path!r}", field="fields")
    if path.startswith("/"):  # a JSON Pointer: dict keys that are not identifiers
        parts = [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]
        if not parts[0] or not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", parts[0]):
            raise ValidationError(f"not a field path: {path!r}", field=path)
        return parts
    segments: list[str] = []
    for part in path.split("."):
        if part == "*":  # each value of a dict
            segments.append("*")
            continue
        name, brackets = part, 0
        while name.endswith("[]"):
            name, brackets = name[:-2], brackets + 1
        if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", name):
            raise ValidationError(f"not a field path: {path!r}", field=path)
        segments.append(name)
        segments.extend(["[]"] * brackets)
    return segments


def step(concrete: str, name: str) -> str:
    """The concrete path one dict key or attribute further: ``a.b``, or ``a["x.y"]`` for a
    key that is not an identifier (so no two paths share a text)."""
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        return f"{concrete}.{name}" if concrete else name
    return f"{concrete}[{json.dumps(name)}]"


def _hints(tp: Any) -> dict[str, Any] | None:
    if dataclasses.is_dataclass(tp) or (isinstance(tp, type) and issubclass(tp, msgspec.Struct)):
        return typing.get_type_hints(tp)
    return None


def _is_list(tp: Any) -> bool:
    return (typing.get_origin(tp) or tp) in (list, tuple, set, frozenset)


def walk_type(root: Any, path: str) -> tuple[tuple[str, ...], Any]:
    """The normalized segments of ``path`` in the type ``root`` (list steps made explicit)
    and the type at its end; ``ValidationError`` naming the path when it does not exist."""
    segments = split_path(path)
    tp: Any = root
    result: list[str] = []
    for seg in segments:
        tp = strip_optional(tp)[0]
        if tp is Any:
            result.append(seg)
            continue
        if seg != "[]" and _is_list(tp):  # implicit: a name after a list applies to elements
            result.append("[]")
            tp = strip_optional((typing.get_args(tp) or (Any,))[0])[0]
        if seg == "*":
            if (typing.get_origin(tp) or tp) is not dict:
                raise ValidationError(
                    f"{path}: {'.'.join(result) or 'it'} is not a dict", field=path
                )
            tp = (typing.get_args(tp) or (Any, Any))[1]
        elif seg == "[]":
            if not _is_list(tp):
                raise ValidationError(
                    f"{path}: {'.'.join(result) or 'it'} is not a list", field=path
                )
            tp = (typing.get_args(tp) or (Any,))[0]
        elif (typing.get_origin(tp) or tp) is dict:
            tp = (typing.get_args(tp) or (Any, Any))[1]
        else:
            hints = _hints(tp)
            if hints is None or seg not in hints:
                raise ValidationError(f"{path}: no attribute {seg!r} there", field=path)
            tp = hints[seg]
        result.append(seg)
    return tuple(result), tp


def slot_of(tp: Any) -> str | None:
    """How a ciphertext can be held where ``tp`` is declared: as text, bytes, or not."""
    base = strip_optional(tp)[0]
    if base is Any or base is str:
        return "str"
    if base in (bytes, bytearray):
        return "bytes"
    if typing.get_origin(base) in (typing.Union, types.UnionType) and str in typing.get_args(base):
        return "str"
    return None


# ---- the storage model ---------------------------------------------------------------------

SEALED_OF = "__persisty_sealed_of__"


def sealed_model(cls: type[Any], fields: Iterable[str], *, name: str | None = None) -> type[Any]:
    """A ``@stored`` class to keep ``cls``'s items in when some encrypted attributes are not
    text (``int``, ``date``, lists, nested values …): every top-level attribute named by a
    path in ``fields`` is stored as ciphertext text (``str``) or, for nested paths, as JSON.

    The storage class has the same store name as ``cls`` (override with ``name``), key and
    indexes; open its store and pass it to ``encrypted``, which reads and writes ``cls``.

    Example::

        Sealed = sealed_model(Patient, ["birthday", "visits[].notes"])
        patients = encrypted(db.store(Sealed), fields=["birthday", "visits[].notes"], keys=k)
        patients.create(Patient(id="p1", birthday=date(1990, 1, 2)))   # reads return Patient
    """
    meta = meta_of(cls)
    whole: set[str] = set()
    nested: set[str] = set()
    elements: set[str] = set()
    for path in fields:
        segments = split_path(path.lstrip("="))
        meta.attr(segments[0])
        if len(segments) == 1:
            whole.add(segments[0])
        elif segments[1:] == ["[]"]:
            elements.add(segments[0])
        else:
            nested.add(segments[0])
    elements -= whole | nested
    namespace: dict[str, Any] = {"__module__": cls.__module__, "__doc__": meta.description}
    annotations: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        a = meta.by_name[f.name]
        tp: Any = a.type
        metadata: Mapping[str, Any] = f.metadata
        if f.name in whole or f.name in nested or f.name in elements:
            if f.name in whole:
                tp = str | None if a.optional else str
            elif f.name in elements:
                tp = list[str] | None if a.optional else list[str]
            else:
                tp = Any
            opts = metadata.get("persisty", AttrOptions())
            metadata = {**metadata, "persisty": dataclasses.replace(opts, constraints={})}
        annotations[f.name] = tp
        value = redeclared(f, metadata)
        if value is not dataclasses.MISSING:
            namespace[f.name] = value
    namespace["__annotations__"] = annotations
    shadow = type(f"Sealed{cls.__name__}", (), namespace)
    for attr in meta.key.attrs:
        if attr in whole or attr in nested or attr in elements:
            raise ValidationError(f"{attr}: a key attribute cannot be encrypted", field=attr)
    result = stored(
        shadow,
        key=meta.key.attrs,
        indexes=meta.indexes,  # type: ignore[call-overload]
        name=name or meta.name,
        label=meta.label,
        summary=meta.summary,
        ttl=meta.ttl,
    )
    setattr(result, SEALED_OF, cls)
    return result  # type: ignore[no-any-return]
