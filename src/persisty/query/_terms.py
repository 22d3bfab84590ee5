"""A filter as the terms of a conjunction: what a backend's planner matches against its
indexes (equality on a prefix, a range on the next attribute) and splits into the part the
engine runs and the residual evaluated in Python."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from persisty.query._filter import ALL, And, Filter


def conjuncts(f: Filter) -> tuple[Filter, ...]:
    """The terms every match of ``f`` satisfies: none for ``ALL``, the parts of an ``And``,
    else ``f`` itself.

    Example::

        from persisty.query import ALL, F, conjuncts

        assert conjuncts((F.owner == "ann") & (F.priority >= 2)) == (
            F.owner == "ann",
            F.priority >= 2,
        )
        assert conjuncts(F.owner == "ann") == (F.owner == "ann",)
        assert conjuncts(ALL) == ()
    """
    if f is ALL:
        return ()
    return f.filters if isinstance(f, And) else (f,)


def split_conjuncts(terms: Sequence[Filter], used: Collection[int]) -> tuple[Filter, Filter]:
    """``(native, residual)``: the conjunction of the terms at the positions ``used`` (an
    index or key lookup answers them) and the conjunction of the others, each in the order
    of ``terms``.

    Example::

        from persisty.query import ALL, F, conjuncts, split_conjuncts

        terms = conjuncts((F.owner == "ann") & F.title.icontains("tea"))
        native, residual = split_conjuncts(terms, {0})
        assert (native, residual) == (F.owner == "ann", F.title.icontains("tea"))
        assert split_conjuncts(terms, {0, 1})[1] is ALL
    """
    return (
        And.of(*(t for i, t in enumerate(terms) if i in used)),
        And.of(*(t for i, t in enumerate(terms) if i not in used)),
    )
