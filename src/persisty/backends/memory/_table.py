"""An in-process table of items with hash and ordered indexes, shared by the memory backend
(and usable by any backend that keeps items in Python)."""

from __future__ import annotations

import bisect
import enum
import threading
from collections.abc import Callable, Sequence
from typing import Any

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
    seek,
)
from persisty.store import Insert, Key, Remove, Replace, WriteOp

Row = tuple[Any, str]


def _plain(v: Any) -> Any:
    return v.value if isinstance(v, enum.Enum) else v


class MemoryTable:
    """Items by key, with an equality map and a sorted list per indexed attribute so that
    ``==``, ``in`` and range filters on an indexed attribute do not scan every item.

    Thread-safe: every method holds the table's lock, and ``commit`` applies a batch of
    writes all-or-nothing when asked to.
    """

    def __init__(self, meta: StoreMeta) -> None:
        self.meta = meta
        self.rows: dict[Key, Row] = {}
        self.lock = threading.RLock()
        firsts = dict.fromkeys(ix.attrs[0] for ix in meta.indexes)
        self.eq: dict[str, dict[Any, set[Key]]] = {a: {} for a in firsts}
        self.ranges: dict[str, list[tuple[Any, Key]]] = {
            a: [] for a in firsts if meta.by_name[a].ordered
        }
        self.unique: list[tuple[Index, dict[tuple[Any, ...], Key]]] = [
            (ix, {}) for ix in meta.indexes if ix.unique
        ]
        self.sequences: dict[str, int] = {}

    def clear(self) -> None:
        """Forget every item, index entry and sequence counter."""
        with self.lock:
            self.rows.clear()
            for values in self.eq.values():
                values.clear()
            for entries in self.ranges.values():
                entries.clear()
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

    def _candidates(self, f: Filter) -> list[Any]:
        terms = f.filters if isinstance(f, And) else (f,)
        best: set[Key] | list[Key] | None = None
        for t in terms:
            if not isinstance(t, Compare) or t.attr not in self.eq:
                continue
            keys: set[Key] | list[Key] | None = None
            if t.op is Op.EQ and t.value is not None:
                keys = self.eq[t.attr].get(_plain(t.value), set())
            elif t.op is Op.IN and None not in t.value:
                keys = set().union(*(self.eq[t.attr].get(_plain(v), set()) for v in t.value))
            elif t.op in (Op.LT, Op.LTE, Op.GT, Op.GTE) and t.attr in self.ranges:
                keys = self._range(t)
            if keys is not None and (best is None or len(keys) < len(best)):
                best = keys
        if best is None:
            return [row[0] for row in self.rows.values()]
        return [self.rows[k][0] for k in best if k in self.rows]

    def _range(self, t: Compare) -> list[Key]:
        entries = self.ranges[t.attr]
        v = _plain(t.value)
        lo, hi = 0, len(entries)
        first = lambda e: e[0]  # noqa: E731
        if t.op is Op.GT:
            lo = bisect.bisect_right(entries, v, key=first)
        elif t.op is Op.GTE:
            lo = bisect.bisect_left(entries, v, key=first)
        elif t.op is Op.LT:
            hi = bisect.bisect_left(entries, v, key=first)
        else:
            hi = bisect.bisect_right(entries, v, key=first)
        return [k for _, k in entries[lo:hi]]

    def find(self, f: Filter, spec: Sort, after: Sequence[Any] | None,
             limit: int | None) -> list[Any]:
        """Items matching ``f`` (validated) in ``spec`` order after ``after``."""
        with self.lock:
            candidates = self._candidates(f)
        if f is not ALL:
            keep: Callable[[Any], bool] = compile_filter(f, self.meta)
            candidates = [i for i in candidates if keep(i)]
        return seek(candidates, spec, after, limit)

    def count(self, f: Filter) -> int:
        """How many items match ``f`` (validated)."""
        if f is ALL:
            return len(self.rows)
        with self.lock:
            candidates = self._candidates(f)
        keep = compile_filter(f, self.meta)
        return sum(1 for i in candidates if keep(i))

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
                raise Conflict(f"{self.meta.name} {self.meta.key_string(op.key)!r} already exists",
                               field=self.meta.key.attrs[0])
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
                raise Conflict(f"{', '.join(ix.attrs)} must be unique: {values!r} is taken",
                               field=ix.attrs[0])

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
            if attr in self.ranges:
                bisect.insort(self.ranges[attr], (v, key))
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
            if attr in self.ranges:
                entries = self.ranges[attr]
                i = bisect.bisect_left(entries, (v, key))
                if i < len(entries) and entries[i] == (v, key):
                    del entries[i]
        for ix, taken in self.unique:
            values = tuple(_plain(getattr(item, a)) for a in ix.attrs)
            if taken.get(values) == key:
                del taken[values]
