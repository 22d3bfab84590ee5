"""The filter AST and the ``F`` builder: ``(F.owner == "ann") & (F.priority >= 1)``."""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

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
        return f"(F.{self.attr} {self.op.value} {self.value!r})"


@dataclass(frozen=True, slots=True)
class And(Filter):
    """Every one of ``filters`` matches."""

    filters: tuple[Filter, ...]

    @staticmethod
    def of(*filters: Filter) -> Filter:
        """Flattened conjunction: ALL drops out, NONE wins."""
        parts: list[Filter] = []
        for f in filters:
            if f is NONE:
                return NONE
            if f is ALL:
                continue
            parts.extend(f.filters if isinstance(f, And) else (f,))
        if not parts:
            return ALL
        return parts[0] if len(parts) == 1 else And(tuple(parts))

    def __repr__(self) -> str:
        return "(" + " & ".join(map(repr, self.filters)) + ")"


@dataclass(frozen=True, slots=True)
class Or(Filter):
    """At least one of ``filters`` matches."""

    filters: tuple[Filter, ...]

    @staticmethod
    def of(*filters: Filter) -> Filter:
        """Flattened disjunction: NONE drops out, ALL wins."""
        parts: list[Filter] = []
        for f in filters:
            if f is ALL:
                return ALL
            if f is NONE:
                continue
            parts.extend(f.filters if isinstance(f, Or) else (f,))
        if not parts:
            return NONE
        return parts[0] if len(parts) == 1 else Or(tuple(parts))

    def __repr__(self) -> str:
        return "(" + " | ".join(map(repr, self.filters)) + ")"


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

    def __repr__(self) -> str:
        return f"F.{self.name}"


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
