"""An in-process table of items with hash and ordered indexes, shared by the memory backend
(and usable by any backend that keeps items in Python)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Sequence
from typing import Any

from persisty.backends.memory._ordered import OrderedIndex
from persisty.backends.memory._plan import (
    UNPLANNED,
    Slice,
    Walk,
    plain,
    read_walk,
    slices,
    walk_plan,
)
from persisty.errors import Conflict, NotFound, PersistyError, PreconditionFailed
from persisty.model import Index, StoreMeta
from persisty.query import ALL, Compare, Filter, Op, Sort, compile_filter, conjuncts, seek
from persisty.store import Insert, Key, Remove, Replace, WriteOp

Row = tuple[Any, str]


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
        return slices(self.ordered, f)

    def _narrowest(self, f: Filter, slices: Sequence[Slice]) -> tuple[int, Any]:
        """The smallest set of candidate keys for ``f`` the indexes give: (its size, the
        keys or the slice), ``(len(rows), None)`` when they give nothing smaller."""
        best: tuple[int, Any] = (len(self.rows), None)
        terms = conjuncts(f)
        for t in terms:
            if not isinstance(t, Compare) or t.attr not in self.eq:
                continue
            keys: set[Key] | None = None
            if t.op is Op.EQ and t.value is not None:
                keys = self.eq[t.attr].get(plain(t.value), set())
            elif t.op is Op.IN and None not in t.value:
                keys = set().union(*(self.eq[t.attr].get(plain(v), set()) for v in t.value))
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
                return read_walk(self.meta, walk[0], walk[1], f, spec, after, limit)
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
            w = self._walks.get(plan_key, UNPLANNED)
            if w is UNPLANNED:
                if len(self._walks) > 1024:
                    self._walks.clear()
                w = self._walks[plan_key] = walk_plan(s, spec)
            if w is not None:
                walks.append((s, w))
        if not walks:
            return None
        s, w = walks[0] if len(walks) == 1 else min(walks, key=lambda sw: sw[0].size)
        if s.covered or s.size <= 8 * max(self._narrowest(f, slices)[0], 1):
            return s, w
        return None

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
            values = tuple(plain(getattr(item, a)) for a in ix.attrs)
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
            v = plain(getattr(item, attr))
            if v is None:
                continue
            by_value.setdefault(v, set()).add(key)
        for ordered in self.ordered:
            ordered.add(key, item)
        for ix, taken in self.unique:
            values = tuple(plain(getattr(item, a)) for a in ix.attrs)
            if None not in values:
                taken[values] = key

    def _unindex(self, key: Key, item: Any) -> None:
        for attr, by_value in self.eq.items():
            v = plain(getattr(item, attr))
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
            values = tuple(plain(getattr(item, a)) for a in ix.attrs)
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
