"""Which filter ops each kind of attribute accepts: the one table the validator, the REST
query string (OpenAPI), GraphQL's filter inputs and the planners read; and the words of a
query string that are not attribute filters."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from persisty.model import ORDERED_KINDS, SCALAR_KINDS, AttrMeta
from persisty.query._filter import Op

EQUALITY_OPS = (Op.EQ, Op.NE, Op.IN)
RANGE_OPS = (Op.LT, Op.LTE, Op.GT, Op.GTE)
STRING_OPS = (Op.CONTAINS, Op.ICONTAINS, Op.STARTSWITH, Op.ISTARTSWITH, Op.ENDSWITH, Op.IENDSWITH)

RANGE_KINDS = ORDERED_KINDS | {"bool"}
"""Kinds compared with lt/lte/gt/gte (booleans too: false < true)."""


def _kind_ops(kind: str) -> tuple[Op, ...]:
    ops: list[Op] = []
    if kind in SCALAR_KINDS:
        ops += EQUALITY_OPS
        if kind in RANGE_KINDS:
            ops += RANGE_OPS
        if kind == "str":
            ops += STRING_OPS
    return (*ops, Op.EXISTS)


OPS_BY_KIND: Mapping[str, tuple[Op, ...]] = MappingProxyType(
    {kind: _kind_ops(kind) for kind in sorted(SCALAR_KINDS)}
)
"""Scalar kind -> the ops an attribute of that kind accepts, in a stable order (lists and
other kinds: see :func:`ops_for`)."""


def ops_for(attr: AttrMeta) -> tuple[Op, ...]:
    """The ops a filter may apply to ``attr``: per :data:`OPS_BY_KIND` for a scalar, element
    ``contains`` for a list of scalars, and ``exists`` for every attribute.

    Example::

        from persisty import stored
        from persisty.model import meta_of
        from persisty.query import Op, ops_for

        @stored
        class Doc:
            id: str
            title: str = ""

        assert Op.STARTSWITH in ops_for(meta_of(Doc).attr("title"))
    """
    if attr.kind in OPS_BY_KIND:
        return OPS_BY_KIND[attr.kind]
    if attr.kind == "list" and attr.item_kind in SCALAR_KINDS:
        return (Op.CONTAINS, Op.EXISTS)
    return (Op.EXISTS,)


PAGING_WORDS = frozenset({"order", "limit", "page_key"})
"""Query-string words that page and sort rather than filter."""

RESERVED = PAGING_WORDS | {"q", "filter"}
"""Every query-string word that is not an attribute filter (``q``: free text, ``filter``: a
JSON filter)."""
