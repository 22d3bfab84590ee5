"""Filters on nested paths (``location.city``, ``/extra/a.b``) in SQL: the value at the path
inside the root attribute's JSON column, read with the engine's JSON functions as the
dialect says (:meth:`Dialect.json_value`: ``json_extract`` on SQLite, ``#>``/``#>>`` with
``jsonb_typeof`` on PostgreSQL, ``JSON_EXTRACT``/``JSON_UNQUOTE`` on MariaDB), typed so
that a number never equals a string and a missing key or JSON ``null`` is ``NULL``.

Leaves of kinds the JSON text cannot compare exactly (datetimes, decimals, bytes, lists)
and engines without JSON functions give ``None``: the store's plan evaluates those
comparisons in Python (``explain()`` shows them as the residual).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import msgspec

from persisty.model import AttrMeta, parse_path
from persisty.query import Compare, Op

if TYPE_CHECKING:
    from persisty.backends.sql._table import TableSchema

_SYMBOL = {Op.LT: "<", Op.LTE: "<=", Op.GT: ">", Op.GTE: ">="}
_TEXT_KIND = {
    Op.CONTAINS: "c",
    Op.ICONTAINS: "c",
    Op.STARTSWITH: "s",
    Op.ISTARTSWITH: "s",
    Op.ENDSWITH: "e",
    Op.IENDSWITH: "e",
}
# kinds whose JSON form compares like the Python value, and the SQL type they are read as
_KINDS = {"str": "str", "int": "int", "float": "float", "bool": "bool", "uuid": "str"}
_KINDS["date"] = "str"  # ISO dates: fixed width, so text order is date order


def _sql_kind(leaf: AttrMeta) -> str | None:
    if leaf.kind == "enum":
        values = [m.value for m in leaf.enum_type or ()]
        if values and all(isinstance(v, str) for v in values):
            return "str"
        if values and all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            return "int"
        return None
    return _KINDS.get(leaf.kind)


def nested_where(table: TableSchema, f: Compare, params: list[Any]) -> str | None:
    """SQL for a validated comparison on a nested path with two-valued semantics (appends
    its parameters), or ``None`` when the engine cannot run it exactly."""
    path = parse_path(table.meta, f.attr)
    column = table.by_name.get(path.root)
    if column is None or column.family != "json":
        return None
    d = table.dialect
    below = path.segments[1:]
    col = column.quoted
    leaf = path.leaf
    op, value = f.op, f.value
    if op is Op.EXISTS or (op in (Op.EQ, Op.NE) and value is None):
        scratch: list[Any] = []
        present = d.json_value(col, below, "any", scratch)
        if present is None:
            return None
        params.extend(scratch)
        wanted = value if op is Op.EXISTS else op is Op.NE
        return f"{present} IS NOT NULL" if wanted else f"{present} IS NULL"
    kind = _sql_kind(leaf)
    if kind is None or (op is Op.CONTAINS and leaf.kind == "list"):
        return None
    if d.json_value(col, below, kind, []) is None:
        return None

    def x(into: list[Any] = params) -> str:
        found = d.json_value(col, below, kind, into)
        assert found is not None
        return found

    ph = d.ph
    plain: Callable[[Any], Any] = msgspec.to_builtins
    # NULL (missing, JSON null, another type) compares as false, under NOT too
    if op is Op.EQ:
        return f"COALESCE({x()} = {_add(params, plain(value), ph)}, 1 = 0)"
    if op is Op.NE:
        return f"COALESCE({x()} <> {_add(params, plain(value), ph)}, 1 = 1)"
    if op is Op.IN:
        given = [v for v in value if v is not None]
        parts = []
        if given:
            expr = x()
            marks = ", ".join(_add(params, plain(v), ph) for v in given)
            parts.append(f"COALESCE({expr} IN ({marks}), 1 = 0)")
        if len(given) != len(value):
            absent = d.json_value(col, below, "any", params)
            parts.append(f"{absent} IS NULL")
        return parts[0] if len(parts) == 1 else "(" + " OR ".join(parts) + ")"
    if op in _SYMBOL:
        return f"COALESCE({x()} {_SYMBOL[op]} {_add(params, plain(value), ph)}, 1 = 0)"
    if kind != "str" or op not in _TEXT_KIND:
        return None
    if value == "":
        return f"{x()} IS NOT NULL"
    lower = op in (Op.ICONTAINS, Op.ISTARTSWITH, Op.IENDSWITH)
    subject = x()
    if lower:
        subject = d.lower_fn.format(subject)
    needle = value.lower() if lower else value
    return f"COALESCE({d.text_match(subject, _TEXT_KIND[op], needle, params)}, 1 = 0)"


def _add(params: list[Any], value: Any, ph: str) -> str:
    params.append(value)
    return ph
