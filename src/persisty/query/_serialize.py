"""Filters and orders to and from JSON and the URL query-string form.

JSON: ``{"attr": "priority", "op": "gte", "value": 1}``, ``{"and": [...]}``,
``{"or": [...]}``, ``{"not": {...}}``, ``{"query": "text"}``, ``{"all": true}``,
``{"none": true}``.

Query string: ``owner=ann&priority__gte=1&title__icontains=x&order=-priority,title``;
``in`` repeats its pair (``owner__in=a&owner__in=b``), ``q=`` is free text and
``filter=`` carries a JSON filter for what pairs cannot say (Or, Not).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import msgspec

from persisty.errors import ValidationError
from persisty.query import _filter as q
from persisty.query._ops import PAGING_WORDS


def filter_to_json(f: q.Filter | None) -> Any:
    """A JSON-compatible form of ``f``; values become builtins (datetimes as ISO strings)."""
    if f is None or f is q.ALL:
        return {"all": True}
    if f is q.NONE:
        return {"none": True}
    if isinstance(f, q.Compare):
        return {"attr": f.attr, "op": f.op.value, "value": msgspec.to_builtins(f.value)}
    if isinstance(f, q.And):
        return {"and": [filter_to_json(x) for x in f.filters]}
    if isinstance(f, q.Or):
        return {"or": [filter_to_json(x) for x in f.filters]}
    if isinstance(f, q.Not):
        return {"not": filter_to_json(f.filter)}
    if isinstance(f, q.TextQuery):
        return {"query": f.text}
    raise ValidationError(f"not a filter: {f!r}")


def filter_from_json(data: Any, _depth: int = 0) -> q.Filter:
    """The filter for :func:`filter_to_json`'s form (values are coerced on validation)."""
    if _depth > q.MAX_DEPTH:
        raise ValidationError(
            f"the filter is nested more than {q.MAX_DEPTH} levels deep", field="filter"
        )
    if not isinstance(data, Mapping):
        raise ValidationError("a filter must be a JSON object", field="filter")
    if data.get("all") is True and len(data) == 1:
        return q.ALL
    if data.get("none") is True and len(data) == 1:
        return q.NONE
    if "and" in data or "or" in data:
        parts = data.get("and", data.get("or"))
        if not isinstance(parts, list) or len(data) != 1:
            raise ValidationError("'and'/'or' take a list of filters", field="filter")
        filters = [filter_from_json(p, _depth + 1) for p in parts]
        return q.And.of(*filters) if "and" in data else q.Or.of(*filters)
    if "not" in data and len(data) == 1:
        return ~filter_from_json(data["not"], _depth + 1)
    if "query" in data and len(data) == 1:
        if not isinstance(data["query"], str):
            raise ValidationError("'query' takes a string", field="query")
        return q.TextQuery(data["query"])
    if set(data) <= {"attr", "op", "value"} and "attr" in data and "op" in data:
        try:
            op = q.Op(data["op"])
        except ValueError:
            raise ValidationError(
                f"unknown operator {data['op']!r}", field=str(data["attr"])
            ) from None
        if not isinstance(data["attr"], str):
            raise ValidationError("'attr' takes a string", field="filter")
        value = data.get("value")
        if op is q.Op.IN and isinstance(value, list):
            value = tuple(value)
        return q.Compare(data["attr"], op, value)
    raise ValidationError(f"not a filter: {data!r}", field="filter")


def filter_to_query(f: q.Filter | None) -> list[tuple[str, str]]:
    """Query-string pairs for ``f``; what pairs cannot say goes into one ``filter=`` pair."""
    if f is None or f is q.ALL:
        return []
    terms = f.filters if isinstance(f, q.And) else (f,)
    pairs: list[tuple[str, str]] = []
    rest: list[q.Filter] = []
    in_attrs: set[str] = set()
    for t in terms:
        if isinstance(t, q.Compare):
            suffix = "" if t.op is q.Op.EQ else "__" + t.op.value
            if t.op is q.Op.IN and t.attr not in in_attrs and None not in t.value:
                # repeated pairs of one attribute form one list, so a second `in` on the
                # same attribute goes into the JSON part
                in_attrs.add(t.attr)
                pairs.extend((t.attr + suffix, _text(v)) for v in t.value)
                continue
            if t.op is q.Op.IN:
                rest.append(t)
                continue
            if t.value is not None:
                pairs.append((t.attr + suffix, _text(t.value)))
                continue
        if isinstance(t, q.TextQuery):
            pairs.append(("q", t.text))
            continue
        rest.append(t)
    if rest:
        encoded = msgspec.json.encode(filter_to_json(q.And.of(*rest))).decode()
        pairs.append(("filter", encoded))
    return pairs


def _text(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    b = msgspec.to_builtins(v)
    return b if isinstance(b, str) else msgspec.json.encode(b).decode()


def filter_from_query(pairs: Iterable[tuple[str, str]]) -> q.Filter:
    """The filter in query-string pairs, ignoring ``order``, ``limit`` and ``page_key``."""
    terms: list[q.Filter] = []
    ins: dict[str, list[str]] = {}
    for name, value in pairs:
        if name in PAGING_WORDS:
            continue
        if name == "q":
            terms.append(q.TextQuery(value))
            continue
        if name == "filter":
            try:
                terms.append(filter_from_json(msgspec.json.decode(value)))
            except msgspec.DecodeError:
                raise ValidationError("filter is not valid JSON", field="filter") from None
            except RecursionError:
                raise ValidationError("the filter is nested too deeply", field="filter") from None
            continue
        attr, _, op_name = name.partition("__")
        try:
            op = q.Op(op_name or "eq")
        except ValueError:
            raise ValidationError(f"unknown operator {op_name!r}", field=attr) from None
        if op is q.Op.IN:
            ins.setdefault(attr, []).append(value)
        else:
            terms.append(q.Compare(attr, op, value))
    terms.extend(q.Compare(a, q.Op.IN, tuple(v)) for a, v in ins.items())
    return q.And.of(*terms)


def order_to_text(order: Iterable[q.Order]) -> str:
    """``-priority,title``."""
    return ",".join(("-" if o.desc else "") + o.attr for o in order)


def order_from_text(text: str) -> tuple[q.Order, ...]:
    """The orders in ``-priority,title``."""
    return q.Order.parse(text)
