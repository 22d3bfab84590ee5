"""How one store lives in Redis (key names, index members, the write-script arguments) and
how a filter and an order are planned onto its sorted sets. Plain sync code shared by the
async and the sync store.

Keys of a store (``base`` is ``<prefix>:{<namespace>:<store>}``; the braces keep a store's
keys in one cluster slot):

``base:i:<key>``
    the item: ``<etag>|<msgspec JSON>``, expiring natively when the store has a TTL
``base:x:~keys``
    every key, as a lexicographic sorted set ordered by the typed key values
``base:x:<index name>``
    one lexicographic sorted set per declared index: the indexed values, then the key
``base:u:<index name>``
    a hash per unique index: encoded values -> key
``base:s``
    the item's etag and the index entries written for it (to remove them later, also
    after the item itself has expired)
``base:e``
    keys by expiry time (stores with a TTL), cleaned up before every read of an index
``base:q:<attr>``
    counters of ``generated="sequence"`` attributes
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from persisty.backends.redis import _encoding as enc
from persisty.errors import Conflict, NotFound, PersistyError, PreconditionFailed
from persisty.model import SCALAR_KINDS, StoreMeta
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
from persisty.store import Insert, Key, Remove, WriteOp

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


def pack(parts: Iterable[bytes]) -> bytes:
    """Length-prefixed concatenation (the Lua scripts' list format)."""
    return b"".join(str(len(p)).encode() + b":" + p for p in parts)


class Layout:
    """Key names, index members and query planning for one store."""

    def __init__(self, meta: StoreMeta, base: str) -> None:
        self.meta = meta
        self.base = base
        self.b = base.encode()
        self.item_prefix = self.b + b":i:"
        key_attrs = meta.key.attrs
        self.keyset = IndexDef(
            KEYS_INDEX, key_attrs, 0, False, self.b + b":x:" + KEYS_INDEX.encode(), b""
        )
        indexes = [self.keyset]
        skipped = []
        for ix in meta.indexes:
            name = ix.index_name(meta.name)
            if any(meta.by_name[a].kind not in SCALAR_KINDS for a in ix.attrs):
                skipped.append(name)
                continue
            indexes.append(
                IndexDef(
                    name,
                    ix.attrs + key_attrs,
                    len(ix.attrs),
                    ix.unique,
                    self.b + b":x:" + name.encode(),
                    self.b + b":u:" + name.encode(),
                )
            )
        self.indexes: tuple[IndexDef, ...] = tuple(indexes)
        self.skipped = tuple(skipped)
        self.unique = tuple(ix for ix in self.indexes if ix.unique)
        self._index_names = [ix.name.encode() for ix in self.indexes]
        self._shadow_names = [b"%d:%s" % (len(n), n) for n in self._index_names]
        count = str(len(self.indexes)).encode()
        self._shadow_count = b"%d:%s" % (len(count), count)
        self._plans: dict[tuple[Filter, Sort], Access] = {}
        self._predicates: dict[Filter, Callable[[Any], bool]] = {}
        self.version_key = self.b + b":v"
        self.signature = (
            "1|"
            + ";".join(
                f"{ix.name}={','.join(ix.attrs)}{'!' if ix.unique else ''}" for ix in self.indexes
            )
        ).encode()
        self.shadow = self.b + b":s"
        self.expiry = self.b + b":e"
        self.expires = meta.expires
        self.header = [
            self.b,
            b"0",
            b"0" if meta.expires is None else b"1",
            str(len(self.indexes)).encode(),
            str(len(self.unique)).encode(),
            *(ix.name.encode() for ix in self.indexes),
            *(ix.name.encode() for ix in self.unique),
        ]

    # ---- names and values -------------------------------------------------------------

    def raw_key(self, key: Key) -> bytes:
        """The key string of typed key values, as bytes."""
        return self.meta.key_string(key).encode()

    def item_key(self, raw: bytes) -> bytes:
        """The Redis key of the item whose key string is ``raw``."""
        return self.item_prefix + raw

    def value(self, item: Any, tag: str) -> bytes:
        """What is stored for an item: its etag, ``|``, its JSON."""
        return tag.encode() + b"|" + self.meta.encode(item)

    def load(self, data: Any) -> tuple[Any, str] | None:
        """The item and etag from a stored value (``None`` for a missing key)."""
        if not isinstance(data, bytes):
            return None
        tag, _, body = data.partition(b"|")
        return self.meta.decode(body), tag.decode()

    def member(self, ix: IndexDef, item: Any, raw: bytes) -> bytes:
        """The sorted-set member of ``item`` in ``ix``."""
        return b"".join(enc.encode(getattr(item, a)) for a in ix.attrs) + raw

    def unique_field(self, ix: IndexDef, item: Any) -> bytes:
        """The unique-hash field of ``item`` in ``ix``; empty when a value is None."""
        values = [getattr(item, a) for a in ix.attrs[: ix.own]]
        if any(v is None for v in values):
            return b""
        return b"".join(enc.encode(v) for v in values)

    def raw_of(self, ix: IndexDef, member: bytes) -> bytes:
        """The key string at the end of a member."""
        return member[enc.prefix_length(member, len(ix.attrs)) :]

    # ---- writes -------------------------------------------------------------------------

    def commit_args(self, ops: Sequence[WriteOp], atomic: bool) -> list[bytes]:
        """The arguments of the commit script for ``ops``."""
        args = list(self.header)
        args[1] = b"1" if atomic else b"0"
        for op in ops:
            raw = self.raw_key(op.key)
            expected = (op.expected or "").encode() if not isinstance(op, Insert) else b""
            if isinstance(op, Remove):
                args += [b"D", raw, expected]
                continue
            item = op.item
            encode = enc.encode
            key = op.key
            tail = (encode(key[0]) if len(key) == 1 else b"".join([encode(v) for v in key])) + raw
            members = [
                b"".join([encode(getattr(item, a)) for a in ix.attrs[: ix.own]]) + tail
                for ix in self.indexes
            ]
            fields = [self.unique_field(ix, item) for ix in self.unique] if self.unique else []
            tag = op.etag.encode()
            doc = (
                op.doc
                if isinstance(op, Insert) and op.doc is not None
                else (self.meta.encode(item))
            )
            args += [
                b"I" if isinstance(op, Insert) else b"R",
                raw,
                expected,
                tag + b"|" + doc,
                self.shadow_entry(tag, members, fields),
                *members,
                *fields,
            ]
            if self.expires is not None:  # PXAT: Redis deletes the item at its expiry
                at = getattr(item, self.expires)
                args.append(b"0" if at is None else b"%d" % max(1, int(at.timestamp() * 1000)))
        return args

    def shadow_entry(self, tag: bytes, members: list[bytes], fields: list[bytes]) -> bytes:
        """The shadow record of an item: etag, (index, member) pairs, (unique index, field)
        pairs, packed as the scripts' list format."""
        out = [b"%d:" % len(tag), tag, self._shadow_count]
        for prefix, m in zip(self._shadow_names, members, strict=True):
            out += (prefix, b"%d:" % len(m), m)
        if not self.unique:
            out.append(b"1:0")
            return b"".join(out)
        taken = [(ix.name.encode(), f) for ix, f in zip(self.unique, fields, strict=True) if f]
        count = str(len(taken)).encode()
        out.append(b"%d:%s" % (len(count), count))
        for name, f in taken:
            out.append(b"%d:%s%d:%s" % (len(name), name, len(f), f))
        return b"".join(out)

    def errors(self, ops: Sequence[WriteOp], codes: Sequence[bytes]) -> list[PersistyError | None]:
        """The script's result codes as persisty errors."""
        meta = self.meta
        result: list[PersistyError | None] = []
        for op, raw in zip(ops, codes, strict=False):
            code = raw.decode() if isinstance(raw, bytes) else str(raw)
            key = meta.key_string(op.key)
            if code in ("ok", ""):
                result.append(None)
            elif code == "exists":
                result.append(
                    Conflict(f"{meta.name} {key!r} already exists", field=meta.key.attrs[0])
                )
            elif code == "missing":
                result.append(NotFound(f"no {meta.name} with key {key!r}"))
            elif code == "etag":
                result.append(PreconditionFailed("the item has changed (etag does not match)"))
            elif code.startswith("unique:"):
                ix = self.unique[int(code[7:])]
                attrs = ix.attrs[: ix.own]
                values = tuple(getattr(getattr(op, "item", None), a, None) for a in attrs)
                result.append(
                    Conflict(
                        f"{', '.join(attrs)} must be unique: {values!r} is taken", field=attrs[0]
                    )
                )
            else:
                result.append(PersistyError(f"unexpected result from Redis: {code}"))
        result += [None] * (len(ops) - len(result))
        return result

    # ---- planning -----------------------------------------------------------------------

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


def as_bytes(values: Any) -> list[bytes]:
    """redis-py's reply (typed loosely) as the list of bytes it is."""
    return list(values)


def after_filter(spec: Sort, after: Sequence[Any] | None) -> Callable[[Any], bool]:
    """A predicate: the item sorts strictly after the position ``after``."""
    if after is None:
        return lambda item: True
    key = sort_key(spec)
    bound = cursor_key(after, spec)
    return lambda item: bool(key(item) > bound)
