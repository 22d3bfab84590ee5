"""Query planning for DynamoDB: a validated filter and a sort become an access path (keys
to get, a Query on the table or a GSI, or a Scan), a KeyConditionExpression, a
FilterExpression and a residual evaluated in Python.

Rules: only top-level ``&`` terms are split between the engine and Python; an ``|`` or a
``~`` goes to the engine whole when every part of it is expressible, else to Python whole,
so no branch is ever lost. The key condition is exact for the partition (an equality) and
an over-approximation for the sort key (a byte range); the terms it came from stay in the
FilterExpression on the real attributes, which is exact.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from persisty.backends.dynamodb._codec import (
    PK,
    SK,
    filter_value_av,
    order_bytes,
    partition_text,
    string_prefix,
    successor,
)
from persisty.model import StoreMeta
from persisty.query import ALL, NONE, And, Compare, Filter, Not, Op, Or, Sort

_CMP = {Op.EQ: "=", Op.NE: "<>", Op.LT: "<", Op.LTE: "<=", Op.GT: ">", Op.GTE: ">="}
_RANGED = frozenset({"str", "int", "float", "datetime", "date", "uuid", "decimal", "bytes", "enum"})


class Expr:
    """Builds one expression's placeholders (``#n0`` names, ``:v0`` values)."""

    def __init__(self, names: str = "n", values: str = "v") -> None:
        self._n, self._v = names, values
        self.names: dict[str, str] = {}
        self.values: dict[str, Any] = {}
        self._by_name: dict[str, str] = {}

    def name(self, attr: str) -> str:
        found = self._by_name.get(attr)
        if found is None:
            found = self._by_name[attr] = f"#{self._n}{len(self._by_name)}"
            self.names[found] = attr
        return found

    def value(self, av: dict[str, Any]) -> str:
        ph = f":{self._v}{len(self.values)}"
        self.values[ph] = av
        return ph

    def params(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.names:
            out["ExpressionAttributeNames"] = self.names
        if self.values:
            out["ExpressionAttributeValues"] = self.values
        return out


def expression(f: Filter, meta: StoreMeta, ex: Expr) -> str | None:
    """The condition text for ``f``, or ``None`` when DynamoDB cannot evaluate it exactly."""
    if isinstance(f, And):
        parts = [expression(x, meta, ex) for x in f.filters]
        if any(p is None for p in parts):
            return None
        return "(" + " AND ".join(p for p in parts if p is not None) + ")"
    if isinstance(f, Or):
        parts = [expression(x, meta, ex) for x in f.filters]
        if any(p is None for p in parts):
            return None
        return "(" + " OR ".join(p for p in parts if p is not None) + ")"
    if isinstance(f, Not):
        inner = expression(f.filter, meta, ex)
        return None if inner is None else f"(NOT {inner})"
    if isinstance(f, Compare):
        return _compare(f, meta, ex)
    return None  # TextQuery (case-insensitive), ALL/NONE never reach here


def _compare(c: Compare, meta: StoreMeta, ex: Expr) -> str | None:
    a = meta.by_name.get(c.attr)
    if a is None:  # a nested path: nested values are stored as JSON text, so in Python
        return None
    op, v = c.op, c.value
    if op is Op.EXISTS:
        n = ex.name(a.name)
        return f"attribute_exists({n})" if v else f"attribute_not_exists({n})"
    if op in (Op.EQ, Op.NE) and v is None:
        n = ex.name(a.name)
        return f"attribute_not_exists({n})" if op is Op.EQ else f"attribute_exists({n})"
    if op in _CMP:
        if op not in (Op.EQ, Op.NE) and a.kind not in _RANGED:
            return None
        av = filter_value_av(a, v)
        if av is None:
            return None
        n = ex.name(a.name)
        text = f"{n} {_CMP[op]} {ex.value(av)}"
        # a missing attribute is unequal to every value (two-valued logic)
        return f"(attribute_not_exists({n}) OR {text})" if op is Op.NE else text
    if op is Op.IN:
        values = list(v)
        has_none = any(x is None for x in values)
        avs = [filter_value_av(a, x) for x in values if x is not None]
        if any(x is None for x in avs):
            return None
        n = ex.name(a.name)
        parts = []
        for start in range(0, len(avs), 99):
            chunk = avs[start : start + 99]
            parts.append(f"{n} IN (" + ", ".join(ex.value(x) for x in chunk if x) + ")")
        if has_none:
            parts.append(f"attribute_not_exists({n})")
        return "(" + " OR ".join(parts) + ")" if parts else None
    if op is Op.CONTAINS:
        n = ex.name(a.name)
        if a.kind == "list":
            av = filter_value_av(a, v, element=True)
            return None if av is None else f"contains({n}, {ex.value(av)})"
        if v == "":
            return f"attribute_exists({n})"
        return f"contains({n}, {ex.value({'S': v})})"
    if op is Op.STARTSWITH:
        n = ex.name(a.name)
        if v == "":
            return f"attribute_exists({n})"
        return f"begins_with({n}, {ex.value({'S': v})})"
    return None  # case-insensitive ops and endswith run in Python


# ---- access paths -------------------------------------------------------------------------


@dataclass
class Plan:
    """How one search runs. ``kind`` is ``get``, ``query``, ``scan`` or ``none``."""

    kind: str
    native: Filter = ALL
    """What the engine answers exactly (the access path and the FilterExpression)."""
    residual: Filter = ALL
    """What Python evaluates on the returned items."""
    keys: list[tuple[Any, ...]] = field(default_factory=list)
    index: str | None = None
    """GSI name (``None``: the table)."""
    pk_attr: str = PK
    pk: bytes | str = b""
    sk_attr: str | None = None
    sk_field: str | None = None
    lo: bytes | None = None
    hi: bytes | None = None
    filter_text: str | None = None
    expr: Expr = field(default_factory=Expr)
    ordered: bool = False
    desc: bool = False
    description: str = ""

    def key_condition(
        self, after_value: Any = None, use_after: bool = False
    ) -> tuple[str, dict[str, Any]] | None:
        """The KeyConditionExpression and its placeholders; ``None`` when the sort-key
        range (narrowed by the page cursor) is empty."""
        lo, hi = self.lo, self.hi
        if use_after:
            b = order_bytes(after_value)
            if self.desc:
                s = successor(b)
                hi = s if hi is None or s < hi else hi
            else:
                lo = b if lo is None or b > lo else lo
        if lo is not None and hi is not None and lo > hi:
            return None
        ex = Expr("k", "w")
        pk = {"S": self.pk} if isinstance(self.pk, str) else {"B": self.pk}
        text = f"{ex.name(self.pk_attr)} = {ex.value(pk)}"
        if self.sk_attr is not None and (lo is not None or hi is not None):
            n = ex.name(self.sk_attr)
            if hi is None:
                assert lo is not None
                text += f" AND {n} >= {ex.value({'B': lo})}"
            elif lo is None:
                text += f" AND {n} <= {ex.value({'B': hi})}"
            else:
                text += f" AND {n} BETWEEN {ex.value({'B': lo})} AND {ex.value({'B': hi})}"
        return text, ex.params()


def _range(c: Compare) -> tuple[bytes | None, bytes | None] | None:
    """The byte range [lo, hi] (inclusive, over-approximated) a sort-key term allows."""
    v = c.value
    if v is None:
        return None
    if c.op is Op.STARTSWITH:
        p = string_prefix(v)
        return p, successor(p)
    if c.op not in (Op.EQ, Op.LT, Op.LTE, Op.GT, Op.GTE):
        return None
    b = order_bytes(v)
    if c.op is Op.EQ:
        return b, successor(b)
    if c.op in (Op.GT, Op.GTE):
        return b, None
    return b"\x01", successor(b)


def make_plan(f: Filter, spec: Sort, meta: StoreMeta) -> Plan:
    """The plan for a validated filter ``f`` sorted by ``spec``."""
    if f is NONE:
        return Plan("none", NONE, ALL, description="nothing can match")
    terms = [] if f is ALL else list(f.filters) if isinstance(f, And) else [f]
    native_terms: list[Filter] = []
    residual_terms: list[Filter] = []
    probe = Expr()
    for t in terms:
        (native_terms if expression(t, meta, probe) is not None else residual_terms).append(t)
    eqs: dict[str, Compare] = {}
    for t in terms:
        if isinstance(t, Compare) and t.op is Op.EQ and t.value is not None:
            eqs.setdefault(t.attr, t)
    residual = And.of(*residual_terms)
    key = meta.key.attrs

    # 1. every key attribute fixed (or `in` on a single key): read the items by key
    if all(k in eqs for k in key):
        used = [eqs[k] for k in key]
        rest = [t for t in terms if t not in used]
        return Plan(
            "get",
            And.of(*used),
            And.of(*rest),
            keys=[tuple(eqs[k].value for k in key)],
            ordered=True,
            description="GetItem by key",
        )
    if len(key) == 1:
        ins = [
            t
            for t in terms
            if isinstance(t, Compare) and t.attr == key[0] and t.op is Op.IN and None not in t.value
        ]
        if ins:
            rest = [t for t in terms if t is not ins[0]]
            return Plan(
                "get",
                ins[0],
                And.of(*rest),
                keys=[(v,) for v in ins[0].value],
                ordered=True,
                description=f"BatchGetItem of {len(ins[0].value)} keys",
            )

    fixed = {t.attr for t in terms if isinstance(t, Compare) and t.op is Op.EQ}
    effective = [(a, d) for a, d in spec if a not in fixed]

    # 2. a partition equality: the table (composite key) or a GSI
    candidates: list[tuple[int, Plan, Compare]] = []
    if len(key) > 1 and key[0] in eqs:
        p = Plan(
            "query",
            pk_attr=PK,
            pk=partition_text(eqs[key[0]].value),
            sk_attr=SK,
            sk_field=key[1],
            description=f"Query on the table ({key[0]} = …)",
        )
        candidates.append((0, p, eqs[key[0]]))
    for i, ix in enumerate(meta.indexes):
        first = ix.attrs[0]
        if first in eqs and eqs[first] in native_terms:
            name = ix.index_name(meta.name)
            p = Plan(
                "query",
                index=name,
                pk_attr=f"~p{i}",
                pk=order_bytes(eqs[first].value),
                sk_attr=f"~s{i}" if len(ix.attrs) > 1 else None,
                sk_field=ix.attrs[1] if len(ix.attrs) > 1 else None,
                description=f"Query on GSI {name} ({first} = …)",
            )
            candidates.append((1, p, eqs[first]))
    if candidates:

        def score(c: tuple[int, Plan, Compare]) -> tuple[int, int, int]:
            rank, p, _ = c
            native_order = not effective or (
                p.sk_field is not None and effective[0][0] == p.sk_field
            )
            ranged = p.sk_field is not None and any(
                isinstance(t, Compare) and t.attr == p.sk_field and _range(t) is not None
                for t in native_terms
            )
            return (0 if native_order else 1, 0 if ranged else 1, rank)

        _, plan, part = min(candidates, key=score)
        filter_terms = [t for t in native_terms if t is not part]
        if plan.sk_field is not None:
            for t in filter_terms:
                if isinstance(t, Compare) and t.attr == plan.sk_field:
                    r = _range(t)
                    if r is None:
                        continue
                    lo, hi = r
                    if lo is not None and (plan.lo is None or lo > plan.lo):
                        plan.lo = lo
                    if hi is not None and (plan.hi is None or hi < plan.hi):
                        plan.hi = hi
            if plan.lo is not None and plan.hi is not None and plan.lo > plan.hi:
                return Plan("none", NONE, ALL, description="the sort-key range is empty")
        plan.ordered = not effective or (
            plan.sk_field is not None and effective[0][0] == plan.sk_field
        )
        plan.desc = bool(effective and effective[0][1]) if plan.ordered else False
        plan.native = And.of(part, *filter_terms)
        plan.residual = residual
        _filter(plan, filter_terms, meta)
        return plan

    # 3. everything else: parallel Scan segments
    plan = Plan("scan", And.of(*native_terms), residual, description="Scan")
    _filter(plan, native_terms, meta)
    return plan


def _filter(plan: Plan, terms: list[Filter], meta: StoreMeta) -> None:
    if terms:
        f = And.of(*terms)
        plan.filter_text = expression(f, meta, plan.expr)
        plan.description += f"; FilterExpression {f!r}"
    if plan.residual is not ALL:
        plan.description += f"; in Python {plan.residual!r}"
    plan.description += "; order " + ("native" if plan.ordered else "in Python")


__all__ = ["Expr", "Plan", "expression", "make_plan"]
