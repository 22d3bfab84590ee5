"""The filter AST and the ``F`` builder: ``(F.owner == "ann") & (F.priority >= 1)``."""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PART = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)((?:\[[0-9]{1,9}\])*)")
_INDEX = re.compile(r"\[([0-9]{1,9})\]")
_ROOT = re.compile(r"[.\[]")

MAX_DEPTH = 100
"""How deeply filters may nest (``and`` in ``or`` in ``not`` …); deeper is a ValidationError."""


class Op(enum.StrEnum):
    """A comparison operator of the query language."""

    EQ = "eq"
    NE = "ne"
    LT = "lt"
    LTE = "lte"
    GT = "gt"
    GTE = "gte"
    IN = "in"
    CONTAINS = "contains"
    ICONTAINS = "icontains"
    STARTSWITH = "startswith"
    ISTARTSWITH = "istartswith"
    ENDSWITH = "endswith"
    IENDSWITH = "iendswith"
    EXISTS = "exists"


class Filter:
    """Base of every filter node. Combine with ``&``, ``|`` and ``~``.

    Semantics are two-valued: a comparison with a missing (``None``) value is false (except
    ``== None``, ``!= None`` and ``exists``), and ``~f`` matches exactly what ``f`` does not.
    """

    __slots__ = ()

    def __and__(self, other: Filter) -> Filter:
        return And.of(self, other)

    def __or__(self, other: Filter) -> Filter:
        return Or.of(self, other)

    def __invert__(self) -> Filter:
        if isinstance(self, Not):
            return self.filter
        if self is ALL:
            return NONE
        if self is NONE:
            return ALL
        return Not(self)


@dataclass(frozen=True, slots=True)
class Compare(Filter):
    """``attr <op> value``, e.g. ``Compare("priority", Op.GTE, 1)``."""

    attr: str
    op: Op
    value: Any

    def __repr__(self) -> str:
        return f"({_ref(self.attr)} {self.op.value} {self.value!r})"


@dataclass(frozen=True, slots=True)
class And(Filter):
    """Every one of ``filters`` matches."""

    filters: tuple[Filter, ...]

    @staticmethod
    def of(*filters: Filter) -> Filter:
        """Flattened conjunction: ALL drops out, NONE wins."""
        return _joined(And, filters, wins=NONE, drops=ALL)

    def __repr__(self) -> str:
        return "(" + " & ".join(map(repr, self.filters)) + ")"


@dataclass(frozen=True, slots=True)
class Or(Filter):
    """At least one of ``filters`` matches."""

    filters: tuple[Filter, ...]

    @staticmethod
    def of(*filters: Filter) -> Filter:
        """Flattened disjunction: NONE drops out, ALL wins."""
        return _joined(Or, filters, wins=ALL, drops=NONE)

    def __repr__(self) -> str:
        return "(" + " | ".join(map(repr, self.filters)) + ")"


def _joined(
    kind: type[And] | type[Or], filters: Iterable[Filter], wins: Filter, drops: Filter
) -> Filter:
    """``filters`` joined as ``kind``, flattened: ``wins`` decides it, ``drops`` drops out
    (and is what none at all gives)."""
    parts: list[Filter] = []
    for f in filters:
        if f is wins:
            return wins
        if f is drops:
            continue
        parts.extend(f.filters if isinstance(f, kind) else (f,))
    if not parts:
        return drops
    return parts[0] if len(parts) == 1 else kind(tuple(parts))


@dataclass(frozen=True, slots=True)
class Not(Filter):
    """``filter`` does not match."""

    filter: Filter

    def __repr__(self) -> str:
        return f"~{self.filter!r}"


@dataclass(frozen=True, slots=True)
class TextQuery(Filter):
    """Free text: matches when any string attribute contains ``text``, ignoring case."""

    text: str


class _Constant(Filter):
    __slots__ = ("_matches",)

    def __init__(self, matches: bool) -> None:
        self._matches = matches

    def __repr__(self) -> str:
        return "ALL" if self._matches else "NONE"

    def __reduce__(self) -> str:
        return "ALL" if self._matches else "NONE"


ALL: Filter = _Constant(True)
"""The filter every item matches."""
NONE: Filter = _Constant(False)
"""The filter no item matches."""


@dataclass(frozen=True, slots=True)
class Order:
    """One ordering term: ``+F.title`` (ascending) or ``-F.priority`` (descending).

    ``None`` sorts before every value ascending (after every value descending).
    """

    attr: str
    desc: bool = False

    def __repr__(self) -> str:
        return ("-" if self.desc else "+") + "F." + self.attr

    @staticmethod
    def parse(orders: Iterable[Order | str] | Order | str | None) -> tuple[Order, ...]:
        """Normalize ``"-priority,title"``, ``["-priority"]`` or ``[-F.priority]``."""
        if orders is None:
            return ()
        if isinstance(orders, Order):
            return (orders,)
        if isinstance(orders, str):
            orders = [o for o in orders.split(",") if o.strip()]
        result = []
        for o in orders:
            if isinstance(o, Order):
                result.append(o)
            elif isinstance(o, AttrRef):
                result.append(Order(o.name))
            elif isinstance(o, str):
                o = o.strip()
                if o.startswith("-"):
                    result.append(Order(o[1:], True))
                else:
                    result.append(Order(o.lstrip("+")))
            else:
                raise TypeError(f"not an order: {o!r}")
        return tuple(result)


class AttrRef:
    """``F.name``: builds comparisons on one attribute."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def _c(self, op: Op, value: Any) -> Compare:
        return Compare(self.name, op, value)

    def __eq__(self, value: object) -> Compare:  # type: ignore[override]
        return self._c(Op.EQ, value)

    def __ne__(self, value: object) -> Compare:  # type: ignore[override]
        return self._c(Op.NE, value)

    def __lt__(self, value: Any) -> Compare:
        return self._c(Op.LT, value)

    def __le__(self, value: Any) -> Compare:
        return self._c(Op.LTE, value)

    def __gt__(self, value: Any) -> Compare:
        return self._c(Op.GT, value)

    def __ge__(self, value: Any) -> Compare:
        return self._c(Op.GTE, value)

    __hash__ = None  # type: ignore[assignment]

    def in_(self, values: Sequence[Any]) -> Compare:
        """The value is one of ``values``."""
        return self._c(Op.IN, values if isinstance(values, str | bytes) else tuple(values))

    def contains(self, value: Any) -> Compare:
        """Substring of a string attribute, or element of a list attribute."""
        return self._c(Op.CONTAINS, value)

    def icontains(self, value: str) -> Compare:
        """Substring, ignoring case."""
        return self._c(Op.ICONTAINS, value)

    def startswith(self, value: str) -> Compare:
        """The string starts with ``value``."""
        return self._c(Op.STARTSWITH, value)

    def istartswith(self, value: str) -> Compare:
        """The string starts with ``value``, ignoring case."""
        return self._c(Op.ISTARTSWITH, value)

    def endswith(self, value: str) -> Compare:
        """The string ends with ``value``."""
        return self._c(Op.ENDSWITH, value)

    def iendswith(self, value: str) -> Compare:
        """The string ends with ``value``, ignoring case."""
        return self._c(Op.IENDSWITH, value)

    def exists(self, present: bool = True) -> Compare:
        """The value is not ``None`` (or is ``None`` with ``present=False``)."""
        return self._c(Op.EXISTS, present)

    def __neg__(self) -> Order:
        return Order(self.name, True)

    def __pos__(self) -> Order:
        return Order(self.name, False)

    def asc(self) -> Order:
        """Ascending order on this attribute."""
        return Order(self.name, False)

    def desc(self) -> Order:
        """Descending order on this attribute."""
        return Order(self.name, True)

    def __getattr__(self, name: str) -> AttrRef:
        """``F.location.city``: the nested path ``location.city`` (a name that is also a
        method of this class, such as ``desc``, is reached with ``F["location.desc"]``)."""
        if name.startswith("__") or name == "name":
            raise AttributeError(name)
        return self[name]

    def __getitem__(self, part: str | int) -> AttrRef:
        """``F.items[3]``, ``F.extra["a.b"]``: a list element or a dict value below this
        path (keys that are not identifiers make a JSON Pointer)."""
        if isinstance(part, bool) or not isinstance(part, str | int):
            raise TypeError(f"a path part is a name or an index, not {part!r}")
        if isinstance(part, int):
            if part < 0:
                raise TypeError(f"a list index is not negative: {part}")
            if self.name.startswith("/"):
                return AttrRef(f"{self.name}/{part}")
            return AttrRef(f"{self.name}[{part}]")
        if _NAME.fullmatch(part) and not self.name.startswith("/"):
            return AttrRef(f"{self.name}.{part}")
        escaped = part.replace("~", "~0").replace("/", "~1")
        return AttrRef(f"{pointer(self.name)}/{escaped}")

    def __repr__(self) -> str:
        return _ref(self.name)


def _ref(name: str) -> str:
    return f"F.{name}" if isinstance(name, str) and not name.startswith("/") else f"F[{name!r}]"


def pointer(text: str) -> str:
    """The JSON Pointer spelling of a dotted path (``a.b[2]`` -> ``/a/b/2``)."""
    if text.startswith("/"):
        return text
    out = ""
    for part in text.split("."):
        m = _PART.fullmatch(part)
        if m is None:
            raise TypeError(f"not a path: {text!r}")
        out += "/" + m.group(1) + "".join("/" + i for i in _INDEX.findall(m.group(2)))
    return out


def root_of(text: str) -> str:
    """The top-level attribute a filter's attribute or path names (``location.city`` ->
    ``location``, ``/extra/a.b`` -> ``extra``)."""
    if text.startswith("/"):
        return text[1:].split("/", 1)[0].replace("~1", "/").replace("~0", "~")
    return _ROOT.split(text, 1)[0]


class _FieldBuilder:
    """``F.owner == "ann"``; ``F["class"]`` for names that are Python keywords."""

    def __getattr__(self, name: str) -> AttrRef:
        if name.startswith("__"):
            raise AttributeError(name)
        return AttrRef(name)

    def __getitem__(self, name: str) -> AttrRef:
        return AttrRef(name)

    @staticmethod
    def query(text: str) -> TextQuery:
        """Free-text search over every string attribute, ignoring case."""
        return TextQuery(text)


F = _FieldBuilder()
"""Builds filters and orders: ``F.priority >= 1``, ``-F.created_at``."""
