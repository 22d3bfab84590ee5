"""How a filter and an order are planned onto a Redis store's sorted sets (which index,
which ``ZRANGEBYLEX`` ranges, whether the index order is the requested order), and the
ordering of index entries by their encoded values. Plain sync code shared by the async and
the sync store; :class:`persisty.backends.redis._layout.Layout` builds on it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

from persisty.backends.redis import _encoding as enc
from persisty.model import StoreMeta
from persisty.query import (
    ALL,
    And,
    Compare,
    Filter,
    Op,
    Sort,
    compile_filter,
    cursor_key,
    sort_key,
)
from persisty.store import Key

KEYS_INDEX = "~keys"
MAX_RANGES = 64


@dataclasses.dataclass(frozen=True)
class IndexDef:
    """One sorted set: ``attrs`` are the indexed attributes followed by the key attributes."""

    name: str
    attrs: tuple[str, ...]
    own: int
    unique: bool
    zset: bytes
    hash: bytes


@dataclasses.dataclass
class Access:
    """How a search runs: by key, on an index range, or by scanning every item."""

    kind: str  # "keys" | "index" | "scan"
    native: Filter
    residual: Filter
    detail: str
    keys: list[Key] = dataclasses.field(default_factory=list)
    index: IndexDef | None = None
    ranges: list[tuple[bytes, bytes]] = dataclasses.field(default_factory=list)
    fixed: int = 0
    group: int = 0
    desc: bool = False
    stream: bool = False
    sortable: bool = False
    order_native: bool = False
    exact: bool = False

    def describe(self) -> str:
        """What ``explain()`` reports for this access."""
        if self.kind != "index" or self.index is None:
            return self.detail
        ix = self.index
        if ix.name == KEYS_INDEX and self.native is ALL:
            what = (
                f"scan in key order: ZRANGEBYLEX over {ix.zset.decode()} in pages, "
                "items fetched with MGET"
            )
            if self.residual is not ALL:
                what += f", {self.residual!r} evaluated in Python"
            return what
        names = ", ".join(ix.attrs[: ix.own]) if ix.own else "key"
        if self.native is ALL:
            how = f"ZRANGEBYLEX over the whole of {ix.zset.decode()}"
        else:
            how = f"{len(self.ranges)} ZRANGEBYLEX range(s) on {ix.zset.decode()}"
        what = f"index {ix.name} ({names}): {how}"
        if self.stream:
            if self.exact and not self.desc:
                what += "; paged in index order"
            else:
                what += "; paged in index order" + (" reversed" if self.desc else "")
                what += ", ties re-sorted in Python"
        elif self.sortable:
            what += "; sorted in Python on the index entries"
        else:
            what += "; matching items sorted in Python"
        if self.residual is not ALL:
            what += f"; residual {self.residual!r} evaluated in Python"
        return what


@dataclasses.dataclass
class _Bound:
    lo: bytes = enc.NON_NONE
    lo_incl: bool = True
    hi: bytes = enc.TOP
    hi_incl: bool = False

    def tighten(self, lo: bytes | None, lo_incl: bool, hi: bytes | None, hi_incl: bool) -> None:
        if lo is not None and (lo > self.lo or (lo == self.lo and not lo_incl)):
            self.lo, self.lo_incl = lo, lo_incl
        if hi is not None and (hi < self.hi or (hi == self.hi and not hi_incl)):
            self.hi, self.hi_incl = hi, hi_incl


def _lex(prefix: bytes, value: bytes, inclusive: bool) -> bytes:
    return (b"[" if inclusive else b"(") + prefix + value


class Planner:
    """Query planning over the sorted sets of one store (the base of ``Layout``)."""

    meta: StoreMeta
    base: str
    keyset: IndexDef
    indexes: tuple[IndexDef, ...]

    def __init__(self) -> None:
        self._plans: dict[tuple[Filter, Sort], Access] = {}
        self._predicates: dict[Filter, Callable[[Any], bool]] = {}

    def access(self, f: Filter, spec: Sort) -> Access:
        """The best way to run the validated filter ``f`` in the order ``spec`` (plans are
        cached: equal filter values always have equal encodings)."""
        try:
            found = self._plans.get((f, spec))
        except TypeError:  # an unhashable value somewhere in the filter
            return self._access(f, spec)
        if found is None:
            found = self._access(f, spec)
            if len(self._plans) >= 1024:
                self._plans.clear()
            self._plans[(f, spec)] = found
        return found

    def predicate(self, f: Filter) -> Callable[[Any], bool]:
        """``compile_filter(f)``, cached like the plans."""
        try:
            found = self._predicates.get(f)
        except TypeError:
            return compile_filter(f, self.meta)
        if found is None:
            found = compile_filter(f, self.meta)
            if len(self._predicates) >= 1024:
                self._predicates.clear()
            self._predicates[f] = found
        return found

    def _access(self, f: Filter, spec: Sort) -> Access:
        conj: list[Filter] = [] if f is ALL else list(f.filters) if isinstance(f, And) else [f]
        keys = self._key_lookup(conj)
        if keys is not None:
            used, key_list = keys
            rest = [c for i, c in enumerate(conj) if i not in used]
            return Access(
                "keys",
                And.of(*(conj[i] for i in sorted(used))),
                And.of(*rest),
                f"key lookup: GET of {len(key_list)} key(s)",
                keys=key_list,
            )
        best: tuple[tuple[int, int, int], Access] | None = None
        for rank, ix in enumerate(self.indexes):
            acc, score = self._index_access(ix, conj, spec)
            if acc is None:
                continue
            points = (score, acc.group if acc.stream else -1, -rank if rank else -99)
            if best is None or points > best[0]:
                best = (points, acc)
        if best is not None and (best[0][0] > 0 or best[1].stream):
            return best[1]
        return Access(
            "scan",
            ALL,
            f,
            f"scan: SCAN MATCH {self.base}:i:* in pages of 1000, "
            "every item evaluated in Python, sorted in Python",
        )

    def _key_lookup(self, conj: list[Filter]) -> tuple[set[int], list[Key]] | None:
        attrs = self.meta.key.attrs
        choices: list[list[Any]] = []
        used: set[int] = set()
        for a in attrs:
            found = None
            for i, c in enumerate(conj):
                if isinstance(c, Compare) and c.attr == a:
                    if c.op is Op.EQ:
                        found = (i, [c.value])
                        break
                    if c.op is Op.IN and found is None:
                        found = (i, list(c.value))
            if found is None:
                return None
            used.add(found[0])
            choices.append([v for v in found[1] if v is not None])
        combos: list[Key] = [()]
        for values in choices:
            combos = [(*k, v) for k in combos for v in values]
            if len(combos) > 1000:
                return None
        return used, list(dict.fromkeys(combos))

    def _index_access(
        self, ix: IndexDef, conj: list[Filter], spec: Sort
    ) -> tuple[Access | None, int]:
        prefixes = [b""]
        used: list[int] = []
        fixed_attrs: list[str] = []
        single = True
        score = 0
        bound: _Bound | None = None
        for pos, attr in enumerate(ix.attrs):
            eq = self._fix(conj, attr, used)
            if eq is not None:
                i, values = eq
                if len(prefixes) * len(values) > MAX_RANGES:
                    break
                used.append(i)
                prefixes = [p + enc.encode(v) for p in prefixes for v in values]
                if len(values) == 1 and single:
                    fixed_attrs.append(attr)
                    score += 4
                else:
                    single = False
                    score += 3
                continue
            bound, range_used = self._range(conj, attr, used)
            if bound is not None:
                used.extend(range_used)
                score += 2 if len(range_used) > 1 or pos == 0 else 1
            break
        if ix is self.keyset and score and not bound:
            score -= 1  # prefer a secondary index that fixes the same
        if bound is None:
            ranges = [(b"[" + p, b"(" + p + enc.TOP) for p in prefixes]
        else:
            ranges = [
                (_lex(p, bound.lo, bound.lo_incl), _lex(p, bound.hi, bound.hi_incl))
                for p in prefixes
            ]
        native = And.of(*(conj[i] for i in sorted(used)))
        residual = And.of(*(c for i, c in enumerate(conj) if i not in used))
        fixed = len(fixed_attrs) if single else 0
        rest_spec = [(a, d) for a, d in spec if a not in fixed_attrs] if single else list(spec)
        remaining = ix.attrs[fixed:]
        group = 0
        desc = bool(rest_spec and rest_spec[0][1])
        for (a, d), b in zip(rest_spec, remaining, strict=False):
            if a != b or d != desc:
                break
            group += 1
        stream = len(ranges) == 1 and group > 0
        if ix is self.keyset and not used and not stream:
            return None, 0
        sortable = all(a in ix.attrs for a, _ in spec)
        return Access(
            "index",
            native,
            residual,
            "",
            index=ix,
            ranges=ranges,
            fixed=fixed,
            group=group,
            desc=desc,
            stream=stream,
            sortable=sortable,
            order_native=stream,
            exact=stream and group == len(rest_spec),
        ), score

    @staticmethod
    def _fix(conj: list[Filter], attr: str, used: list[int]) -> tuple[int, list[Any]] | None:
        found = None
        for i, c in enumerate(conj):
            if i in used or not isinstance(c, Compare) or c.attr != attr:
                continue
            if c.op is Op.EQ and not enc.is_nan(c.value):
                return i, [c.value]
            if c.op is Op.EXISTS and c.value is False:
                return i, [None]
            if c.op is Op.IN and found is None and not any(enc.is_nan(v) for v in c.value):
                found = (i, list(c.value))
        return found

    def _range(
        self, conj: list[Filter], attr: str, used: list[int]
    ) -> tuple[_Bound | None, list[int]]:
        kind = self.meta.by_name[attr].kind
        bound = _Bound()
        if kind in ("float", "decimal"):
            bound.hi = enc.NAN  # NaN compares false with everything
        taken: list[int] = []
        for i, c in enumerate(conj):
            if i in used or not isinstance(c, Compare) or c.attr != attr:
                continue
            v = c.value
            if c.op in (Op.LT, Op.LTE, Op.GT, Op.GTE) and enc.is_nan(v):
                continue
            if c.op is Op.GT:
                bound.tighten(enc.encode(v) + enc.TOP, False, None, False)
            elif c.op is Op.GTE:
                bound.tighten(enc.encode(v), True, None, False)
            elif c.op is Op.LT:
                bound.tighten(None, True, enc.encode(v), False)
            elif c.op is Op.LTE:
                bound.tighten(None, True, enc.encode(v) + enc.TOP, False)
            elif c.op is Op.STARTSWITH and kind == "str":
                p = enc.str_prefix(v)
                bound.tighten(p, True, p + enc.TOP, False)
            elif c.op is Op.EXISTS and c.value is True:
                bound.tighten(enc.NON_NONE, True, enc.TOP, False)
            else:
                continue
            taken.append(i)
        return (bound, taken) if taken else (None, [])

    # ---- ordering on index entries ------------------------------------------------------

    def group_of(self, acc: Access, member: bytes) -> bytes:
        """The part of ``member`` that decides its group in a streamed search."""
        assert acc.index is not None
        return member[: enc.prefix_length(member, acc.fixed + acc.group)]

    def split_groups(self, acc: Access, members: list[bytes], need: int) -> list[list[bytes]]:
        """``members`` cut after the group of the ``need``-th one (and the rest)."""
        if need < 1 or len(members) <= need:
            return [members]
        last = self.group_of(acc, members[need - 1])
        cut = need
        while (
            cut < len(members)
            and members[cut].startswith(last)
            and (self.group_of(acc, members[cut]) == last)
        ):
            cut += 1
        return [members[:cut], members[cut:]]

    def start(
        self, acc: Access, spec: Sort, after: Sequence[Any] | None, lo: bytes, hi: bytes
    ) -> tuple[bytes, bytes]:
        """Narrow a streamed range to start at the group of the cursor ``after``."""
        if after is None:
            return lo, hi
        assert acc.index is not None
        lead = acc.index.attrs[: acc.fixed]
        rest = [(a, v) for (a, _), v in zip(spec, after, strict=True) if a not in lead]
        prefix = b"".join(self._fixed_comps(acc, lo))
        cursor = prefix + b"".join(enc.encode(v) for _, v in rest[: acc.group])
        if acc.desc:
            bound = b"(" + cursor + enc.TOP
            return lo, bound if bound[1:] < hi[1:] else hi
        bound = b"[" + cursor
        return (bound if bound[1:] > lo[1:] else lo), hi

    def _fixed_comps(self, acc: Access, lo: bytes) -> list[bytes]:
        if acc.fixed == 0:
            return []
        return enc.split(lo[1:], acc.fixed)[0]

    def sort_members(
        self, ix: IndexDef, members: list[bytes], spec: Sort, after: Sequence[Any] | None
    ) -> list[bytes]:
        """``members`` in ``spec`` order using only the encoded values, after ``after``."""
        n = len(ix.attrs)
        positions = [ix.attrs.index(a) for a, _ in spec]
        rows = [(enc.split(m, n)[0], m) for m in members]
        for pos, (_, desc) in reversed(list(zip(positions, spec, strict=True))):
            rows.sort(key=lambda r, p=pos: r[0][p], reverse=desc)  # type: ignore[misc]
        if after is not None:
            cursor = [enc.encode(v) for v in after]

            def beyond(comps: list[bytes]) -> bool:
                for pos, (_, desc), c in zip(positions, spec, cursor, strict=True):
                    if comps[pos] != c:
                        return (comps[pos] < c) if desc else (comps[pos] > c)
                return False

            rows = [r for r in rows if beyond(r[0])]
        return [m for _, m in rows]


def after_filter(spec: Sort, after: Sequence[Any] | None) -> Callable[[Any], bool]:
    """A predicate: the item sorts strictly after the position ``after``."""
    if after is None:
        return lambda item: True
    key = sort_key(spec)
    bound = cursor_key(after, spec)
    return lambda item: bool(key(item) > bound)
