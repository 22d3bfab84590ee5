"""Generating the ``@stored`` class of a normalized definition (see ``_spec``)."""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import decimal
import enum
import functools
import hashlib
import json
import re
import typing
import uuid
from collections.abc import Mapping
from typing import Any

import msgspec

from persisty.errors import PersistyError
from persisty.model import Attr, Index, StoreMeta, stored

_SCALARS: dict[str, Any] = {
    "str": str,
    "int": int,
    "float": float,
    "bool": bool,
    "datetime": dt.datetime,
    "date": dt.date,
    "uuid": uuid.UUID,
    "decimal": decimal.Decimal,
    "bytes": bytes,
    "any": Any,
}
_META_KEYS = ("min_length", "max_length", "pattern", "ge", "le", "gt", "lt")


def spec_digest(spec: Mapping[str, Any]) -> str:
    """A short, stable hash of a normalized spec (what a generated class is cached by,
    besides the name and version)."""
    text = json.dumps(spec, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def physical_name(name: str, generation: int) -> str:
    """The name of the store that holds the items of ``name``'s data generation: a new
    generation (a destructive migration, a definition after a drop) never sees old rows."""
    return f"{name}__g{generation}"


_PHYSICAL = re.compile(r"(?<=[a-z0-9])__g[0-9]+(?![0-9])")


def user_facing(text: str) -> str:
    """``text`` with the names of data generations (``tasks__g2``) shown as the user's
    store name (``tasks``): what every error a user sees says.

    Example::

        from persisty.dynamic import user_facing

        assert user_facing("tasks__g2.title: Expected `str`") == "tasks.title: Expected `str`"
    """
    return _PHYSICAL.sub("", text) if "__g" in text else text


def rename_error(e: BaseException) -> None:
    """Show a persisty error's message in the user's names (see :func:`user_facing`)."""
    if isinstance(e, PersistyError) and "__g" in e.message:
        e.message = user_facing(e.message)
        e.args = (e.message, *e.args[1:])


class UserNames:
    """A context in which a persisty error's message is shown in the user's names (one
    instance serves every call: it keeps no state)."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, error: BaseException | None, tb: Any) -> None:
        if error is not None:
            rename_error(error)


USER_NAMES = UserNames()


def user_meta(meta: StoreMeta, name: str) -> StoreMeta:
    """``meta`` named as the user's store: its validation errors say ``tasks``, not the
    data generation ``tasks__g1`` (its class, attributes and schemas are the same)."""
    return dataclasses.replace(meta, name=name)


def class_name(name: str) -> str:
    """``"contact_list"`` -> ``"ContactList"``."""
    return "".join(part.capitalize() for part in name.split("_") if part) or "Item"


def build_class(spec: Mapping[str, Any], generation: int) -> type[Any]:
    """The ``@stored`` class of a normalized spec, its items kept in ``physical_name(name,
    generation)``.

    Example::

        from persisty.dynamic import build_class, normalize_spec

        cls = build_class(normalize_spec({"name": "pets", "attrs": {
            "id": "str", "age": {"type": "int", "ge": 0}}}), 1)
        cls(id="rex", age=3)
    """
    name = spec["name"]
    physical = physical_name(name, generation)
    namespace: dict[str, Any] = {
        "__annotations__": {},
        "__module__": __name__,
        "__doc__": spec.get("description") or None,
        "__qualname__": class_name(name),
    }
    for attr_name, attr in spec["attrs"].items():
        tp, field = _field(class_name(name), attr_name, attr)
        namespace["__annotations__"][attr_name] = tp
        if field is not dataclasses.MISSING:
            namespace[attr_name] = field
    cls = type(class_name(name), (), namespace)
    indexes = [
        Index(*ix["attrs"], unique=ix["unique"], name=_index_name(physical, ix))
        for ix in spec["indexes"]
    ]
    ttl = dt.timedelta(seconds=spec["ttl"]) if spec.get("ttl") else None
    made: type[Any] = stored(
        key=tuple(spec["key"]),
        indexes=indexes,
        name=physical,
        label=spec.get("label"),
        summary=tuple(spec.get("summary", ())),
        ttl=ttl,
    )(cls)
    return made


def _index_name(physical: str, ix: Mapping[str, Any]) -> str:
    tag = hashlib.sha256(json.dumps([ix["attrs"], ix["unique"]]).encode()).hexdigest()[:8]
    return f"ix_{physical}_{tag}"


def _field(owner: str, name: str, attr: Mapping[str, Any]) -> tuple[Any, Any]:
    tp = _python_type(owner, name, attr)
    flags = {f: attr[f] for f in ("creatable", "updatable", "readable", "sortable") if f in attr}
    constraints = {k: attr[k] for k in _META_KEYS if k in attr}
    description = attr.get("description")
    if attr.get("generated"):
        return tp, Attr(
            default=None,
            generated=attr["generated"],
            description=description,
            **flags,
            **constraints,
        )
    if attr["optional"]:
        tp = tp | None
    if "default" in attr:
        value = _convert(attr["default"], tp)
        if isinstance(value, list | dict):
            return tp, Attr(
                default_factory=functools.partial(copy.deepcopy, value),
                description=description,
                expires=attr.get("expires", False),
                **flags,
                **constraints,
            )
        return tp, Attr(
            default=value,
            description=description,
            expires=attr.get("expires", False),
            **flags,
            **constraints,
        )
    if attr["optional"]:
        return tp, Attr(
            default=None,
            description=description,
            expires=attr.get("expires", False),
            **flags,
            **constraints,
        )
    if flags or constraints or description:
        return tp, Attr(description=description, **flags, **constraints)
    return tp, dataclasses.MISSING


def _convert(value: Any, tp: Any) -> Any:
    return msgspec.convert(value, tp, strict=False)


def _python_type(owner: str, name: str, attr: Mapping[str, Any]) -> Any:
    kind = attr["type"]
    if kind == "enum":
        # members are named like constants (``"red"`` -> ``RED``) where that is unique
        names = [
            v.upper() if v.isidentifier() and not v.startswith("_") else "" for v in attr["values"]
        ]
        members = {
            (n if n and names.count(n) == 1 else f"V{i}"): v
            for i, (n, v) in enumerate(zip(names, attr["values"], strict=True))
        }
        made: Any = enum.Enum(f"{owner}{class_name(name)}", members)  # type: ignore[misc]
        made.__module__ = __name__
        return made
    if kind == "list":
        item = attr["items"]
        inner = _python_type(owner, name, item)
        item_meta = {k: item[k] for k in _META_KEYS if k in item}
        if item_meta:
            inner = typing.Annotated[inner, msgspec.Meta(**item_meta)]
        return list[inner]  # type: ignore[valid-type]
    if kind == "dict":
        if "attrs" not in attr:
            return dict[str, Any]
        return _nested(f"{owner}{class_name(name)}", attr["attrs"])
    return _SCALARS[kind]


def _nested(cls_name: str, attrs: Mapping[str, Any]) -> type[Any]:
    """A nested object: a keyword-only dataclass with the same attribute rules."""
    fields: list[tuple[str, Any, Any]] = []
    for name, attr in attrs.items():
        tp = _python_type(cls_name, name, attr)
        meta = {k: attr[k] for k in _META_KEYS if k in attr}
        if meta:
            tp = typing.Annotated[tp, msgspec.Meta(**meta)]
        if attr["optional"]:
            tp = tp | None
        if "default" in attr:
            value = _convert(attr["default"], tp)
            fields.append(
                (
                    name,
                    tp,
                    dataclasses.field(default_factory=functools.partial(copy.deepcopy, value)),
                )
            )
        elif attr["optional"]:
            fields.append((name, tp, dataclasses.field(default=None)))
        else:
            fields.append((name, tp, dataclasses.field()))
    made = dataclasses.make_dataclass(cls_name, fields, kw_only=True, slots=True)
    made.__module__ = __name__
    return made
