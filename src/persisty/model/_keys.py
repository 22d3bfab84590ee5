"""Keys: the key and index declarations, and key values as text and back."""

from __future__ import annotations

import base64
import datetime as dt
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from persisty.errors import ValidationError
from persisty.model._attr import AttrMeta, to_utc


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
