"""Rewriting a filter leaf by leaf: what layers do to a caller's filter before it runs
(the secured layer limits free text to the readable attributes, the encrypted layer turns
comparisons on sealed attributes into comparisons on their ciphertext)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from persisty.query._filter import And, Compare, Filter, Not, Op, Or, TextQuery


def map_leaves(f: Filter, leaf: Callable[[Filter], Filter]) -> Filter:
    """``f`` rebuilt with ``leaf`` applied to each of its leaves (comparisons, text queries,
    ``ALL`` and ``NONE``); ``And``, ``Or`` and ``Not`` keep their shape, simplified as
    ``And.of``, ``Or.of`` and ``~`` simplify.

    Example::

        from persisty.query import ALL, Compare, F, Op, map_leaves

        def loud(x):
            return Compare(x.attr, Op.EQ, x.value.upper()) if isinstance(x, Compare) else x

        f = map_leaves((F.owner == "ann") | ~(F.title == "tea"), loud)
        assert f == (F.owner == "ANN") | ~(F.title == "TEA")
        assert map_leaves(F.owner == "ann", lambda x: ALL) is ALL
    """
    if isinstance(f, And):
        return And.of(*(map_leaves(x, leaf) for x in f.filters))
    if isinstance(f, Or):
        return Or.of(*(map_leaves(x, leaf) for x in f.filters))
    if isinstance(f, Not):
        return ~map_leaves(f.filter, leaf)
    return leaf(f)


def expand_text(f: Filter, attrs: Iterable[str]) -> Filter:
    """``f`` with each free-text query spelled out as a case-insensitive ``contains`` on
    each of ``attrs`` (``NONE`` where there are none): how a layer narrows what a text query
    searches.

    Example::

        from persisty.query import F, Or, TextQuery, expand_text

        f = expand_text(TextQuery("tea") & (F.owner == "ann"), ["title"])
        assert f == F.title.icontains("tea") & (F.owner == "ann")
        assert expand_text(TextQuery("tea"), ["title", "body"]) == Or.of(
            F.title.icontains("tea"), F.body.icontains("tea")
        )
    """
    names = tuple(attrs)

    def spell(x: Filter) -> Filter:
        if isinstance(x, TextQuery):
            return Or.of(*(Compare(a, Op.ICONTAINS, x.text) for a in names))
        return x

    return map_leaves(f, spell)
