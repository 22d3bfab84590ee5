"""Validation of filters against a store's attributes, and the one Python evaluator.

The evaluator defines the semantics every backend must reproduce; the conformance suite
checks each backend against it.
"""

from __future__ import annotations

import bisect
import enum
import functools
import heapq
import operator
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from persisty.errors import ValidationError
from persisty.model import AttrMeta, StoreMeta, is_path, parse_path
from persisty.query._filter import (
    ALL,
    MAX_DEPTH,
    NONE,
    And,
    Compare,
    Filter,
    Not,
    Op,
    Or,
    Order,
    TextQuery,
    root_of,
)
from persisty.query._ops import RANGE_OPS, ops_for
from persisty.query._rewrite import map_leaves

SCALAR_OPS = frozenset({Op.EQ, Op.NE, Op.IN, Op.EXISTS})

Sort = tuple[tuple[str, bool], ...]
"""A full sort: ``(attribute, descending)`` pairs ending with the key attributes."""


def validate_filter(f: Filter | None, meta: StoreMeta) -> Filter:
    """Check ``f`` against ``meta`` and coerce its values to the attributes' types.

    Raises ``ValidationError`` naming the attribute for an unknown attribute, an op the
    attribute's type does not support, or a value that cannot be coerced.
    """
    if f is None:
        return ALL
    if not isinstance(f, Filter):
        raise ValidationError(f"not a filter: {f!r}")
    if f is ALL or f is NONE:
        return f
    if not isinstance(f, Compare):
        _check_depth(f)
    try:
        # repr keeps apart values that compare equal across types (1, 1.0, True)
        return _validated(meta, f, repr(f))
    except TypeError:  # a value that cannot be hashed (a list, a dict): validate afresh
        return _validate(f, meta)


def _check_depth(f: Filter) -> None:
    """Refuse filters nested more than ``MAX_DEPTH`` levels: every engine and the evaluator
    walk filters recursively. (Checked without recursion, before anything else walks it.)"""
    level: list[Filter] = [f]
    depth = 0
    while level:
        depth += 1
        if depth > MAX_DEPTH:
            raise ValidationError(
                f"the filter is nested more than {MAX_DEPTH} levels deep", field="filter"
            )
        below: list[Filter] = []
        for x in level:
            if isinstance(x, And | Or):
                below.extend(x.filters)
            elif isinstance(x, Not):
                below.append(x.filter)
        level = below


@functools.lru_cache(maxsize=4096)
def _validated(meta: StoreMeta, f: Filter, _spelling: str) -> Filter:
    # the same filters arrive again and again from application code and the API
    return _validate(f, meta)


def _validate(f: Filter, meta: StoreMeta) -> Filter:
    return map_leaves(f, functools.partial(_validate_leaf, meta=meta))


def _validate_leaf(f: Filter | None, meta: StoreMeta) -> Filter:
    if f is None:
        return ALL
    if f is ALL or f is NONE:
        return f
    if isinstance(f, TextQuery):
        if not isinstance(f.text, str):
            raise ValidationError("a text query must be a string", field="query")
        if not any(a.kind == "str" for a in meta.attrs):
            return NONE
        return f if f.text else ALL
    if isinstance(f, Compare):
        return _validate_compare(f, meta)
    raise ValidationError(f"not a filter: {f!r}")


def filter_attr(meta: StoreMeta, name: str) -> AttrMeta:
    """The attribute a filter names: a top-level attribute, or the leaf of a nested path
    (``location.city``, ``/extra/a.b``) named by its canonical text; ``ValidationError``
    naming it when the model has neither.

    Example::

        assert filter_attr(meta_of(Note), "/address/city").name == "address.city"
        assert filter_attr(meta_of(Note), "address.city").kind == "str"
    """
    found = meta.by_name.get(name) if isinstance(name, str) else None
    if found is not None:
        return found
    if isinstance(name, str) and is_path(name):
        return parse_path(meta, name).leaf
    return meta.attr(name)


def value_getter(meta: StoreMeta, name: str) -> Callable[[Any], Any]:
    """Reads the value a (validated) filter's attribute or nested path names from an item
    (``None`` through a ``None`` parent, a missing dict key or an index past the end)."""
    if name in meta.by_name:
        return operator.attrgetter(name)
    return parse_path(meta, name).get


def _validate_compare(c: Compare, meta: StoreMeta) -> Filter:
    a = filter_attr(meta, c.attr)
    op = c.op
    if not isinstance(op, Op):
        try:
            op = Op(op)
        except ValueError:
            raise ValidationError(f"unknown operator {c.op!r}", field=a.name) from None
    value = c.value
    if op is Op.EXISTS:
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
            value = value.lower() in ("true", "1")
        if not isinstance(value, bool):
            raise ValidationError(f"{a.name}: exists takes true or false", field=a.name)
        return Compare(a.name, op, value)
    allowed = ops_for(a)
    if op in (Op.EQ, Op.NE):
        if op not in allowed:
            raise ValidationError(
                f"{a.name}: {op.value} is not supported on a {a.kind}", field=a.name
            )
        return Compare(a.name, op, a.coerce(value))
    if op is Op.IN:
        if op not in allowed:
            raise ValidationError(f"{a.name}: in is not supported on a {a.kind}", field=a.name)
        if isinstance(value, str | bytes) or not isinstance(value, Iterable):
            raise ValidationError(f"{a.name}: in takes a list of values", field=a.name)
        values = tuple(dict.fromkeys(a.coerce(v) for v in value))
        return Compare(a.name, op, values) if values else NONE
    if op in RANGE_OPS:
        if op not in allowed:
            raise ValidationError(
                f"{a.name}: {op.value} is not supported on a {a.kind}", field=a.name
            )
        if value is None:
            raise ValidationError(f"{a.name}: {op.value} needs a value, not null", field=a.name)
        bound = a.coerce(value)
        if bound is None:  # "null" in a query string
            raise ValidationError(f"{a.name}: {op.value} needs a value, not null", field=a.name)
        return Compare(a.name, op, bound)
    # string ops
    if op is Op.CONTAINS and a.kind == "list":
        if op not in allowed:
            raise ValidationError(f"{a.name}: contains is not supported on this list", field=a.name)
        return Compare(a.name, op, a.coerce_element(value))
    if op not in allowed:
        raise ValidationError(f"{a.name}: {op.value} is only supported on strings", field=a.name)
    if not isinstance(value, str):
        raise ValidationError(f"{a.name}: {op.value} takes a string", field=a.name)
    return Compare(a.name, op, value)


def _plain(v: Any) -> Any:
    return v.value if isinstance(v, enum.Enum) else v


def _compare_fn(c: Compare, meta: StoreMeta) -> Callable[[Any], bool]:
    name = c.attr
    get: Callable[[Any], Any] = value_getter(meta, name)
    value = c.value
    op = c.op
    if filter_attr(meta, name).kind == "enum":
        value = tuple(_plain(v) for v in value) if op is Op.IN else _plain(value)
        plain_get = get

        def get(item: Any) -> Any:
            return _plain(plain_get(item))

    if op is Op.EQ:
        return lambda item: bool(get(item) == value)
    if op is Op.NE:
        return lambda item: bool(get(item) != value)
    if op is Op.IN:
        try:
            values: Any = frozenset(value)
        except TypeError:
            values = value
        return lambda item: get(item) in values
    if op is Op.EXISTS:
        return (lambda item: get(item) is not None) if value else (lambda item: get(item) is None)
    if op in RANGE_OPS:
        cmp = {Op.LT: operator.lt, Op.LTE: operator.le, Op.GT: operator.gt, Op.GTE: operator.ge}[op]

        def ranged(item: Any) -> bool:
            v = get(item)
            return v is not None and bool(cmp(v, value))

        return ranged
    if op is Op.CONTAINS:
        return lambda item: (v := get(item)) is not None and value in v
    low = value.lower() if isinstance(value, str) else value
    if op is Op.ICONTAINS:
        return lambda item: (v := get(item)) is not None and low in v.lower()
    if op is Op.STARTSWITH:
        return lambda item: (v := get(item)) is not None and v.startswith(value)
    if op is Op.ISTARTSWITH:
        return lambda item: (v := get(item)) is not None and v.lower().startswith(low)
    if op is Op.ENDSWITH:
        return lambda item: (v := get(item)) is not None and v.endswith(value)
    if op is Op.IENDSWITH:
        return lambda item: (v := get(item)) is not None and v.lower().endswith(low)
    raise ValidationError(f"unknown operator {op!r}")


def compile_filter(f: Filter, meta: StoreMeta) -> Callable[[Any], bool]:
    """A predicate for a *validated* filter: the reference semantics of the query language."""
    if f is ALL:
        return lambda item: True
    if f is NONE:
        return lambda item: False
    if isinstance(f, Compare):
        return _compare_fn(f, meta)
    if isinstance(f, And):
        fns = [compile_filter(x, meta) for x in f.filters]
        return lambda item: all(fn(item) for fn in fns)
    if isinstance(f, Or):
        fns = [compile_filter(x, meta) for x in f.filters]
        return lambda item: any(fn(item) for fn in fns)
    if isinstance(f, Not):
        fn = compile_filter(f.filter, meta)
        return lambda item: not fn(item)
    if isinstance(f, TextQuery):
        getters = [operator.attrgetter(a.name) for a in meta.attrs if a.kind == "str"]
        text = f.text.lower()
        return lambda item: any((v := g(item)) is not None and text in v.lower() for g in getters)
    raise ValidationError(f"not a filter: {f!r}")


def matches(f: Filter | None, item: Any, meta: StoreMeta) -> bool:
    """Whether ``item`` matches ``f`` (validated here)."""
    return compile_filter(validate_filter(f, meta), meta)(item)


def attrs_of(f: Filter) -> set[str]:
    """The top-level attributes a filter refers to (a nested path counts as its root:
    ``location.city`` refers to ``location``)."""
    return {root_of(p) for p in paths_of(f)}


def paths_of(f: Filter) -> set[str]:
    """The attribute names and nested paths a filter refers to, as written in it."""
    if isinstance(f, Compare):
        return {f.attr}
    if isinstance(f, And | Or):
        return set().union(*(paths_of(x) for x in f.filters))
    if isinstance(f, Not):
        return paths_of(f.filter)
    return set()


# ---- ordering ---------------------------------------------------------------------------


def sort_spec(meta: StoreMeta, order: Iterable[Order | str] | Order | str | None) -> Sort:
    """The full sort for ``order``: validated, with the key attributes appended as ties."""
    return _sort_spec(meta, Order.parse(order))


@functools.lru_cache(maxsize=4096)
def _sort_spec(meta: StoreMeta, orders: tuple[Order, ...]) -> Sort:
    spec: list[tuple[str, bool]] = []
    seen: set[str] = set()
    for o in orders:
        if isinstance(o.attr, str) and is_path(o.attr):
            path = parse_path(meta, o.attr)  # names a path the model does not have
            raise ValidationError(
                f"{path.text}: ordering by a nested path is not supported (filter on it, "
                f"order by a top-level attribute)",
                field=path.text,
            )
        a = meta.attr(o.attr)
        if not a.sortable or not (a.ordered or a.kind == "bool"):
            raise ValidationError(f"{a.name}: cannot order by a {a.kind}", field=a.name)
        if a.name not in seen:
            seen.add(a.name)
            spec.append((a.name, o.desc))
    for k in meta.key.attrs:
        if k not in seen:
            spec.append((k, False))
    return tuple(spec)


class _Rev:
    """Reverses the order of a comparable value (descending sort terms)."""

    __slots__ = ("v",)

    def __init__(self, v: Any) -> None:
        self.v = v

    def __lt__(self, other: _Rev) -> bool:
        return bool(other.v < self.v)

    def __gt__(self, other: _Rev) -> bool:
        return bool(other.v > self.v)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Rev) and bool(self.v == other.v)

    def __hash__(self) -> int:
        return hash(self.v)


def _term(v: Any, desc: bool) -> Any:
    if not desc:
        return (0,) if v is None else (1, _plain(v))
    if v is None:
        return (2,)
    if isinstance(v, int | float) and not isinstance(v, bool):
        return (1, -v)  # cheaper than _Rev, same order
    return (1, _Rev(_plain(v)))


def cursor_key(values: Sequence[Any], spec: Sort) -> tuple[Any, ...]:
    """A comparable position for sort values (``None`` first ascending)."""
    return tuple(_term(v, d) for v, (_, d) in zip(values, spec, strict=True))


def sort_values(item: Any, spec: Sort) -> tuple[Any, ...]:
    """The values of ``item`` that its position in ``spec`` depends on."""
    return tuple(getattr(item, a) for a, _ in spec)


def sort_key(spec: Sort) -> Callable[[Any], tuple[Any, ...]]:
    """A ``key=`` function that sorts items by ``spec``."""
    names = [a for a, _ in spec]
    dirs = [d for _, d in spec]

    def key(item: Any) -> tuple[Any, ...]:
        return tuple(_term(getattr(item, n), d) for n, d in zip(names, dirs, strict=True))

    return key


def seek(
    items: Iterable[Any], spec: Sort, after: Sequence[Any] | None, limit: int | None
) -> list[Any]:
    """Sort ``items``, keep those after the position ``after``, return at most ``limit``."""
    key = sort_key(spec)
    if after is None and limit is not None:
        return heapq.nsmallest(limit, items, key=key)
    ordered = sorted(items, key=key)
    if after is not None:
        bound = cursor_key(after, spec)
        start = bisect.bisect_right(ordered, bound, key=key)
        ordered = ordered[start:]
    return ordered if limit is None else ordered[:limit]
