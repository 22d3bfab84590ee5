"""How the memory table answers a filter from its ordered indexes: the slice of each index
that can match, how to read a slice in a sort order, and that read."""

from __future__ import annotations

import enum
import operator
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from persisty.backends.memory._ordered import NONE_PAIR, Entry, OrderedIndex, Position, pair
from persisty.model import StoreMeta
from persisty.query import (
    Compare,
    Filter,
    Op,
    Sort,
    compile_filter,
    conjuncts,
    cursor_key,
    sort_key,
)

_RANGE = frozenset({Op.LT, Op.LTE, Op.GT, Op.GTE})


def plain(v: Any) -> Any:
    return v.value if isinstance(v, enum.Enum) else v


@dataclass(slots=True)
class Slice:
    """The entries of an ordered index that can match a filter: those with the equality
    prefix (``prefix`` columns fixed) and within the range on the next column."""

    index: OrderedIndex
    prefix: int
    bound: Entry
    """The flattened values of the equality prefix."""
    lo: Position
    hi: Position
    covered: bool
    """Every term of the filter is answered by the slice: no item needs checking."""
    fixed: dict[str, Any]
    """The attributes the filter fixes with ``==`` (constant across its matches)."""

    @property
    def size(self) -> int:
        return self.index.entries.between(self.lo, self.hi)


@dataclass(frozen=True, slots=True)
class Walk:
    """How to read a slice in a sort order: by the column after the prefix (``first``),
    backwards when ``desc``; the entries of a run of equal ``first`` values then come in
    the order of the next columns, to be reversed or sorted when the sort wants otherwise."""

    first: str
    desc: bool
    reverse_runs: bool
    sort_runs: bool


UNPLANNED: Any = object()


def walk_plan(s: Slice, spec: Sort) -> Walk | None:
    """How to read ``s`` in ``spec`` order (after the attributes its filter fixes), or
    ``None`` when the index's order is not that order."""
    cols = s.index.columns
    rest = [(a, d) for a, d in spec if a not in s.fixed]
    if not rest or s.prefix >= len(cols) or cols[s.prefix] != rest[0][0]:
        return None
    first, desc = rest[0]
    tail = [c for c in cols[s.prefix + 1 :] if c not in s.fixed][: len(rest) - 1]
    in_index_order = [a for a, _ in rest[1:]] == tail and len({d for _, d in rest[1:]}) <= 1
    return Walk(
        first,
        desc,
        reverse_runs=in_index_order and len(rest) > 1 and rest[1][1] != desc,
        sort_runs=not in_index_order,
    )


def slices(ordered: Sequence[OrderedIndex], f: Filter) -> list[Slice]:
    """For each ordered index, the slice of its entries that can match ``f``."""
    if not ordered:
        return []
    terms = conjuncts(f)
    fixed: dict[str, Any] = {}
    repeated: set[str] = set()
    for t in terms:
        if isinstance(t, Compare) and t.op is Op.EQ:
            if t.attr in fixed:
                repeated.add(t.attr)
            else:
                fixed[t.attr] = t.value
    out = []
    for ix in ordered:
        cols = ix.columns
        p = 0
        flat: list[Any] = []
        while p < len(cols) and cols[p] in fixed:
            flat += pair(fixed[cols[p]])
            p += 1
        prefix = tuple(flat)
        entries = ix.entries
        lo = entries.position(prefix) if p else (0, 0)
        hi = entries.position(prefix, right=True) if p else entries.end()
        answered = sum(
            1
            for t in terms
            if isinstance(t, Compare)
            and t.op is Op.EQ
            and t.attr in cols[:p]
            and t.attr not in repeated
        )
        if p < len(cols):
            ranged = lower = False
            for t in terms:
                if not (isinstance(t, Compare) and t.attr == cols[p] and t.op in _RANGE):
                    continue
                answered += 1
                ranged = True
                at = prefix + pair(t.value)
                if t.op is Op.GT:
                    lo, lower = max(lo, entries.position(at, right=True)), True
                elif t.op is Op.GTE:
                    lo, lower = max(lo, entries.position(at)), True
                elif t.op is Op.LT:
                    hi = min(hi, entries.position(at))
                else:
                    hi = min(hi, entries.position(at, right=True))
            if ranged and not lower:
                # a range never matches None: start after the None entries
                lo = max(lo, entries.position(prefix + NONE_PAIR, right=True))
        out.append(Slice(ix, p, prefix, lo, hi, answered == len(terms), fixed))
    return out


def read_walk(
    meta: StoreMeta,
    s: Slice,
    w: Walk,
    f: Filter,
    spec: Sort,
    after: Sequence[Any] | None,
    limit: int | None,
) -> list[Any]:
    """The items of the slice matching ``f``, in ``spec`` order, after ``after``."""
    lo, hi = s.lo, s.hi
    entries = s.index.entries
    bound = None
    if after is not None:
        bound = cursor_key(after, spec)
        names = [a for a, _ in spec]
        if all(plain(after[names.index(a)]) == plain(v) for a, v in s.fixed.items() if a in names):
            # start at the run of the page's last item (earlier runs come before it)
            at = s.bound + pair(after[names.index(w.first)])
            if w.desc:
                hi = min(hi, entries.position(at, right=True))
            else:
                lo = max(lo, entries.position(at))
    flag_i, value_i = 2 * s.prefix, 2 * s.prefix + 1
    if s.covered and bound is None and limit is not None and not w.sort_runs:
        # every entry is a result: take ``limit`` of them and the rest of the last run
        # (whose order may still change), by list slices, and reorder the runs in C
        extra = 8
        while True:
            run = entries.take(lo, hi, w.desc, limit + extra)
            if len(run) < limit + extra:  # the whole slice
                break
            last = run[limit - 1]
            if run[-1][value_i] != last[value_i] or run[-1][flag_i] != last[flag_i]:
                n = limit
                while run[n][value_i] == last[value_i] and run[n][flag_i] == last[flag_i]:
                    n += 1
                del run[n:]
                break
            extra *= 4
        if w.reverse_runs and len(run) > 1:
            # stable: ties keep their reversed (wanted) order while the runs go back
            run.reverse()
            run.sort(key=operator.itemgetter(flag_i, value_i), reverse=w.desc)
        return [e[-1] for e in run[:limit]]
    walk = entries.walk(lo, hi, reverse=w.desc)
    keep = None if s.covered else compile_filter(f, meta)
    order = sort_key(spec)
    out: list[Any] = []

    def emit(run: list[Entry]) -> bool:
        nonlocal bound
        items = [e[-1] for e in run]
        if len(items) > 1:
            if w.sort_runs:
                items.sort(key=order)
            elif w.reverse_runs:
                items.reverse()
        for item in items:
            if keep is not None and not keep(item):
                continue
            if bound is not None:
                if not bound < order(item):  # (sort terms define < only)
                    continue
                bound = None  # items come in order: every later one is after the bound
            out.append(item)
            if limit is not None and len(out) >= limit:
                return True
        return False

    run = []
    run_flag: Any = None
    run_value: Any = None
    for e in walk:
        if run and (e[value_i] != run_value or e[flag_i] != run_flag):
            if emit(run):
                return out
            run = []
        if not run:
            run_flag, run_value = e[flag_i], e[value_i]
        run.append(e)
    if run:
        emit(run)
    return out
