"""An in-process table of items with hash and ordered indexes, shared by the memory backend
(and usable by any backend that keeps items in Python)."""

from __future__ import annotations

import contextlib
import enum
import operator
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from persisty.backends.memory._ordered import NONE_PAIR, Entry, OrderedIndex, Position, pair
from persisty.errors import Conflict, NotFound, PersistyError, PreconditionFailed
from persisty.model import Index, StoreMeta
from persisty.query import (
    ALL,
    And,
    Compare,
    Filter,
    Op,
    Sort,
    compile_filter,
    cursor_key,
    seek,
    sort_key,
)
from persisty.store import Insert, Key, Remove, Replace, WriteOp

Row = tuple[Any, str]

_RANGE = frozenset({Op.LT, Op.LTE, Op.GT, Op.GTE})


def _plain(v: Any) -> Any:
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


_UNPLANNED: Any = object()


def _walk_plan(s: Slice, spec: Sort) -> Walk | None:
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


class MemoryTable:
    """Items by key, with an equality map per first indexed attribute (``==`` and ``in``)
    and an :class:`OrderedIndex` per declared index (its longest prefix of attributes that
    can be ordered, then the key), so that equality on a prefix plus a range on, or an order
    by, the next attribute, and the count of such a filter, are O(log n + k) instead of a
    scan of every candidate.

    Thread-safe: every method holds the table's lock, and ``commit`` applies a batch of
    writes all-or-nothing when asked to.
    """

    def __init__(self, meta: StoreMeta) -> None:
        self.meta = meta
        self.rows: dict[Key, Row] = {}
        self.lock = threading.RLock()
        firsts = dict.fromkeys(ix.attrs[0] for ix in meta.indexes)
        self.eq: dict[str, dict[Any, set[Key]]] = {a: {} for a in firsts}
        columns: dict[tuple[str, ...], None] = {}
        for ix in meta.indexes:
            cols: list[str] = []
            for a in ix.attrs:
                attr = meta.by_name[a]
                if not (attr.ordered or attr.kind == "bool") or a in cols:
                    break
                cols.append(a)
            if cols:
                columns[tuple(cols + [k for k in meta.key.attrs if k not in cols])] = None
        self.ordered: list[OrderedIndex] = [OrderedIndex(c) for c in columns]
        self.unique: list[tuple[Index, dict[tuple[Any, ...], Key]]] = [
            (ix, {}) for ix in meta.indexes if ix.unique
        ]
        self.sequences: dict[str, int] = {}
        self._walks: dict[tuple[Any, ...], Walk | None] = {}

    def adopt(self, meta: StoreMeta) -> None:
        """Keep this table's items for a new version of its class (``meta``: say, an
        attribute or an index was added): each item is converted to the new class by its
        values, keeps its etag, and the indexes are rebuilt for the new declaration. An
        item that does not fit the new class raises ``ValidationError`` and changes
        nothing."""
        with self.lock:
            old = self.meta
            rows = {
                k: (meta.from_builtins(old.to_builtins(item)), tag)
                for k, (item, tag) in self.rows.items()
            }
            sequences, lock = dict(self.sequences), self.lock
            MemoryTable.__init__(self, meta)
            self.sequences.update(sequences)
            self.lock = lock
            for k, row in rows.items():
                self._check_unique(k, row[0])
                self._put(k, row)

    def clear(self) -> None:
        """Forget every item, index entry and sequence counter."""
        with self.lock:
            self.rows.clear()
            for values in self.eq.values():
                values.clear()
            self.ordered[:] = [OrderedIndex(ix.columns) for ix in self.ordered]
            for _, taken in self.unique:
                taken.clear()
            self.sequences.clear()

    # ---- reads --------------------------------------------------------------------------

    def get(self, key: Key) -> Row | None:
        """The item and etag stored under ``key``."""
        return self.rows.get(key)

    def next_sequence(self, attr: str) -> int:
        """The next value of the integer sequence ``attr`` (1, 2, 3 …)."""
        with self.lock:
            value = self.sequences.get(attr, 0) + 1
            self.sequences[attr] = value
            return value

    def skip_sequence(self, attr: str, by: int) -> None:
        """Advance the sequence ``attr`` by ``by`` numbers."""
        with self.lock:
            self.sequences[attr] = self.sequences.get(attr, 0) + by

    def _slices(self, f: Filter) -> list[Slice]:
        """For each ordered index, the slice of its entries that can match ``f``."""
        if not self.ordered:
            return []
        terms = f.filters if isinstance(f, And) else () if f is ALL else (f,)
        fixed: dict[str, Any] = {}
        repeated: set[str] = set()
        for t in terms:
            if isinstance(t, Compare) and t.op is Op.EQ:
                if t.attr in fixed:
                    repeated.add(t.attr)
                else:
                    fixed[t.attr] = t.value
        out = []
        for ix in self.ordered:
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

    def _narrowest(self, f: Filter, slices: Sequence[Slice]) -> tuple[int, Any]:
        """The smallest set of candidate keys for ``f`` the indexes give: (its size, the
        keys or the slice), ``(len(rows), None)`` when they give nothing smaller."""
        best: tuple[int, Any] = (len(self.rows), None)
        terms = f.filters if isinstance(f, And) else (f,)
        for t in terms:
            if not isinstance(t, Compare) or t.attr not in self.eq:
                continue
            keys: set[Key] | None = None
            if t.op is Op.EQ and t.value is not None:
                keys = self.eq[t.attr].get(_plain(t.value), set())
            elif t.op is Op.IN and None not in t.value:
                keys = set().union(*(self.eq[t.attr].get(_plain(v), set()) for v in t.value))
            if keys is not None and len(keys) < best[0]:
                best = (len(keys), keys)
        for s in slices:
            size = s.size
            if size < best[0]:
                best = (size, s)
        return best

    def _candidates(self, f: Filter, slices: Sequence[Slice]) -> list[Any]:
        _, found = self._narrowest(f, slices)
        if found is None:
            return [row[0] for row in self.rows.values()]
        if isinstance(found, Slice):
            return [e[-1] for e in found.index.entries.walk(found.lo, found.hi)]
        return [self.rows[k][0] for k in found if k in self.rows]

    def find(
        self, f: Filter, spec: Sort, after: Sequence[Any] | None, limit: int | None
    ) -> list[Any]:
        """Items matching ``f`` (validated) in ``spec`` order after ``after``."""
        with self.lock:
            slices = self._slices(f)
            walk = self._best_walk(f, spec, slices)
            if walk is not None:
                return self._walk(walk[0], walk[1], f, spec, after, limit)
            candidates = self._candidates(f, slices)
        if f is not ALL:
            keep: Callable[[Any], bool] = compile_filter(f, self.meta)
            candidates = [i for i in candidates if keep(i)]
        return seek(candidates, spec, after, limit)

    def _best_walk(
        self, f: Filter, spec: Sort, slices: Sequence[Slice]
    ) -> tuple[Slice, Walk] | None:
        """The slice to read the result off in index order, if one is worth it: it must be
        in ``spec`` order, and either need no check of its items or be no more than a few
        times the size of the smallest candidate set (reading it stops at the limit)."""
        walks = []
        for s in slices:
            plan_key = (s.index, s.prefix, spec, frozenset(s.fixed))
            w = self._walks.get(plan_key, _UNPLANNED)
            if w is _UNPLANNED:
                if len(self._walks) > 1024:
                    self._walks.clear()
                w = self._walks[plan_key] = _walk_plan(s, spec)
            if w is not None:
                walks.append((s, w))
        if not walks:
            return None
        s, w = walks[0] if len(walks) == 1 else min(walks, key=lambda sw: sw[0].size)
        if s.covered or s.size <= 8 * max(self._narrowest(f, slices)[0], 1):
            return s, w
        return None

    def _walk(
        self,
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
            if all(
                _plain(after[names.index(a)]) == _plain(v) for a, v in s.fixed.items() if a in names
            ):
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
        keep = None if s.covered else compile_filter(f, self.meta)
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

    def count(self, f: Filter) -> int:
        """How many items match ``f`` (validated)."""
        if f is ALL:
            return len(self.rows)
        with self.lock:
            slices = self._slices(f)
            for s in slices:
                if s.covered:
                    return s.size
            candidates = self._candidates(f, slices)
        keep = compile_filter(f, self.meta)
        return sum(1 for i in candidates if keep(i))

    def describe(self, f: Filter, spec: Sort) -> str:
        """How :meth:`find` answers ``f`` in ``spec`` order (for ``explain``)."""
        with self.lock:
            slices = self._slices(f)
            walk = self._best_walk(f, spec, slices)
            if walk is not None:
                s = walk[0]
                fixed = ", ".join(s.index.columns[: s.prefix]) or "nothing"
                return (
                    f"memory ordered index ({', '.join(s.index.columns)}): {fixed} fixed, "
                    f"read in order; filter {f!r} evaluated in process"
                )
            _, found = self._narrowest(f, slices)
        if isinstance(found, Slice):
            how = f"ordered index ({', '.join(found.index.columns)}) slice"
        else:
            used = [a for a in self.eq if a in repr(f)] if found is not None else []
            how = f"index on {', '.join(used)}" if used else "scan"
        return f"memory {how}; filter {f!r} evaluated in process"

    # ---- writes -------------------------------------------------------------------------

    def commit(self, ops: Sequence[WriteOp], atomic: bool) -> list[PersistyError | None]:
        """Apply ``ops`` in order; all or nothing when ``atomic``."""
        errors: list[PersistyError | None] = []
        undo: list[tuple[Key, Row | None]] = []
        with self.lock:
            for op in ops:
                try:
                    undo.append((op.key, self.rows.get(op.key)))
                    self._apply(op)
                    errors.append(None)
                except PersistyError as e:
                    undo.pop()
                    errors.append(e)
                    if atomic:
                        for key, row in reversed(undo):
                            self._put(key, row)
                        errors.extend([None] * (len(ops) - len(errors)))
                        return errors
        return errors

    def _apply(self, op: WriteOp) -> None:
        current = self.rows.get(op.key)
        if isinstance(op, Insert):
            if current is not None:
                raise Conflict(
                    f"{self.meta.name} {self.meta.key_string(op.key)!r} already exists",
                    field=self.meta.key.attrs[0],
                )
            self._check_unique(op.key, op.item)
            self._put(op.key, (op.item, op.etag))
            return
        if current is None:
            raise NotFound(f"no {self.meta.name} with key {self.meta.key_string(op.key)!r}")
        if op.expected is not None and current[1] != op.expected:
            raise PreconditionFailed("the item has changed (etag does not match)")
        if isinstance(op, Replace):
            self._check_unique(op.key, op.item)
            self._put(op.key, (op.item, op.etag))
        elif isinstance(op, Remove):
            self._put(op.key, None)

    def _check_unique(self, key: Key, item: Any) -> None:
        for ix, taken in self.unique:
            values = tuple(_plain(getattr(item, a)) for a in ix.attrs)
            if None in values:
                continue
            owner = taken.get(values)
            if owner is not None and owner != key:
                raise Conflict(
                    f"{', '.join(ix.attrs)} must be unique: {values!r} is taken", field=ix.attrs[0]
                )

    def _put(self, key: Key, row: Row | None) -> None:
        # replace in place: ``get`` takes no lock, so a row must never be briefly missing
        old = self.rows.get(key)
        if old is not None:
            self._unindex(key, old[0])
        if row is not None:
            self.rows[key] = row
            self._index(key, row[0])
        elif old is not None:
            del self.rows[key]

    def _index(self, key: Key, item: Any) -> None:
        for attr, by_value in self.eq.items():
            v = _plain(getattr(item, attr))
            if v is None:
                continue
            by_value.setdefault(v, set()).add(key)
        for ordered in self.ordered:
            ordered.add(key, item)
        for ix, taken in self.unique:
            values = tuple(_plain(getattr(item, a)) for a in ix.attrs)
            if None not in values:
                taken[values] = key

    def _unindex(self, key: Key, item: Any) -> None:
        for attr, by_value in self.eq.items():
            v = _plain(getattr(item, attr))
            if v is None:
                continue
            keys = by_value.get(v)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del by_value[v]
        for ordered in self.ordered:
            ordered.discard(key)
        for ix, taken in self.unique:
            values = tuple(_plain(getattr(item, a)) for a in ix.attrs)
            if taken.get(values) == key:
                del taken[values]


def commit_tables(
    parts: Sequence[tuple[MemoryTable, Sequence[WriteOp]]],
) -> list[list[PersistyError | None]]:
    """Apply each table's ops under all their locks (taken in one order, so two commits
    never wait on each other), all or nothing across the tables."""
    tables = sorted({id(t): t for t, _ in parts}.values(), key=lambda t: t.meta.name)
    errors: list[list[PersistyError | None]] = [[None] * len(ops) for _, ops in parts]
    undo: list[tuple[MemoryTable, Key, Row | None]] = []
    with contextlib.ExitStack() as locks:
        for t in tables:
            locks.enter_context(t.lock)
        for n, (table, ops) in enumerate(parts):
            for j, op in enumerate(ops):
                before = table.rows.get(op.key)
                try:
                    table._apply(op)
                except PersistyError as e:
                    errors[n][j] = e
                    for t, key, row in reversed(undo):
                        t._put(key, row)
                    return errors
                undo.append((table, op.key, before))
    return errors
