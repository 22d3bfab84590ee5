"""The filter -> SQL compiler of one table: ``WHERE`` clauses with two-valued semantics,
``ORDER BY`` with ``None`` first ascending, keyset seeks, and the ``SELECT`` / ``count`` /
``DELETE`` built of them. What differs between engines (text matching, JSON list
membership, ``NULLS`` order, locking) the dialect says.

Identifiers come from the model (quoted by the dialect); values are always parameters.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import msgspec

from persisty.backends.sql._compile_paths import nested_where
from persisty.errors import ValidationError
from persisty.query import ALL, NONE, And, Compare, Filter, Not, Op, Or, Sort, TextQuery

if TYPE_CHECKING:
    from persisty.backends.sql._table import Column, TableSchema

_TEXT_KIND = {
    Op.CONTAINS: "c",
    Op.ICONTAINS: "c",
    Op.STARTSWITH: "s",
    Op.ISTARTSWITH: "s",
    Op.ENDSWITH: "e",
    Op.IENDSWITH: "e",
}
_SYMBOL = {Op.LT: "<", Op.LTE: "<=", Op.GT: ">", Op.GTE: ">="}


class FilterCompiler:
    """SQL for validated filters, sorts and seeks over one :class:`TableSchema`."""

    def __init__(self, table: TableSchema) -> None:
        self.table = table
        self.dialect = table.dialect
        self._order_cache: dict[Sort, str] = {}

    def where(self, f: Filter, params: list[Any]) -> str:
        """SQL for a validated filter with two-valued semantics; appends its parameters."""
        if f is ALL:
            return "1 = 1"
        if f is NONE:
            return "1 = 0"
        if isinstance(f, Compare):
            return self._compare(f, params)
        if isinstance(f, And):
            return "(" + " AND ".join(self.where(x, params) for x in f.filters) + ")"
        if isinstance(f, Or):
            return "(" + " OR ".join(self.where(x, params) for x in f.filters) + ")"
        if isinstance(f, Not):
            return "NOT (" + self.where(f.filter, params) + ")"
        if isinstance(f, TextQuery):
            if not self.table.str_cols:
                return "1 = 0"
            parts = [self._text(c, Op.ICONTAINS, f.text, params) for c in self.table.str_cols]
            return "(" + " OR ".join(parts) + ")"
        raise ValidationError(f"not a filter: {f!r}")

    def pushable(self, f: Filter) -> bool:
        """Whether :meth:`where` can say all of the validated filter ``f`` (a comparison on
        a nested path of a kind or engine JSON cannot compare exactly runs in Python)."""
        if isinstance(f, Compare):
            return f.attr in self.table.by_name or nested_where(self.table, f, []) is not None
        if isinstance(f, And | Or):
            return all(self.pushable(x) for x in f.filters)
        if isinstance(f, Not):
            return self.pushable(f.filter)
        return True

    def split(self, f: Filter) -> tuple[Filter, Filter]:
        """``(native, residual)`` of a validated filter: the terms of its conjunction SQL
        can say, and the rest (``native & residual == f``)."""
        terms = list(f.filters) if isinstance(f, And) else [f]
        native = [t for t in terms if self.pushable(t)]
        if len(native) == len(terms):
            return f, ALL
        return And.of(*native), And.of(*(t for t in terms if not self.pushable(t)))

    def _guard(self, c: Column, expr: str) -> str:
        if c.nullable:
            return f"({c.quoted} IS NOT NULL AND {expr})"
        return expr

    def _compare(self, f: Compare, params: list[Any]) -> str:
        c = self.table.by_name.get(f.attr)
        if c is None:
            nested = nested_where(self.table, f, params)
            if nested is None:
                raise ValidationError(f"{f.attr}: cannot run in SQL", field=f.attr)
            return nested
        ph = self.dialect.ph
        col = c.quoted
        op = f.op
        value = f.value
        if op is Op.EXISTS:
            return f"{col} IS NOT NULL" if value else f"{col} IS NULL"
        if op is Op.EQ:
            if value is None:
                return f"{col} IS NULL"
            params.append(self.table.param(c.name, value))
            return self._guard(c, f"{col} = {ph}")
        if op is Op.NE:
            if value is None:
                return f"{col} IS NOT NULL"
            params.append(self.table.param(c.name, value))
            if c.nullable:
                return f"({col} IS NULL OR {col} <> {ph})"
            return f"{col} <> {ph}"
        if op is Op.IN:
            present = [v for v in value if v is not None]
            parts = []
            if present:
                params.extend(self.table.param(c.name, v) for v in present)
                parts.append(self._guard(c, f"{col} IN ({', '.join([ph] * len(present))})"))
            if len(present) != len(value):
                parts.append(f"{col} IS NULL")
            return parts[0] if len(parts) == 1 else "(" + " OR ".join(parts) + ")"
        if op in (Op.LT, Op.LTE, Op.GT, Op.GTE):
            sym = _SYMBOL[op]
            params.append(self.table.param(c.name, value))
            return self._guard(c, f"{col} {sym} {ph}")
        if op is Op.CONTAINS and c.attr.kind == "list":
            return self._guard(c, self._list_contains(c, value, params))
        return self._text(c, op, value, params)

    def _list_contains(self, c: Column, value: Any, params: list[Any]) -> str:
        return self.dialect.list_contains(
            self.table.quoted, c.quoted, msgspec.to_builtins(value), params
        )

    def _text(self, c: Column, op: Op, value: str, params: list[Any]) -> str:
        d = self.dialect
        lower = op in (Op.ICONTAINS, Op.ISTARTSWITH, Op.IENDSWITH)
        if value == "":
            return f"{c.quoted} IS NOT NULL"
        needle = value.lower() if lower else value
        subject = d.lower_fn.format(c.quoted) if lower else c.quoted
        return self._guard(c, d.text_match(subject, _TEXT_KIND[op], needle, params))

    def order_by(self, spec: Sort) -> str:
        """``ORDER BY`` for a full sort, ``None`` first ascending and last descending."""
        found = self._order_cache.get(spec)
        if found is None:
            found = self._order_by(spec)
            if len(self._order_cache) < 256:
                self._order_cache[spec] = found
        return found

    def _order_by(self, spec: Sort) -> str:
        by_name = self.table.by_name
        return ", ".join(
            self.dialect.order_term(by_name[name].quoted, desc, by_name[name].nullable)
            for name, desc in spec
        )

    def seek(self, spec: Sort, after: Sequence[Any], params: list[Any]) -> str:
        """Rows strictly after the position ``after`` in ``spec`` (composite keyset seek)."""
        ph = self.dialect.ph
        ors = []
        for i, (name, desc) in enumerate(spec):
            ands = []
            for (prev, _), v in zip(spec[:i], after[:i], strict=True):
                pc = self.table.by_name[prev]
                if v is None:
                    ands.append(f"{pc.quoted} IS NULL")
                else:
                    params.append(self.table.param(prev, v))
                    ands.append(f"{pc.quoted} = {ph}")
            c = self.table.by_name[name]
            v = after[i]
            if v is None:
                if desc:
                    continue  # nothing sorts after None descending
                ands.append(f"{c.quoted} IS NOT NULL")
            else:
                params.append(self.table.param(name, v))
                if desc:
                    ands.append(
                        f"({c.quoted} < {ph} OR {c.quoted} IS NULL)"
                        if c.nullable
                        else f"{c.quoted} < {ph}"
                    )
                else:
                    ands.append(f"{c.quoted} > {ph}")
            ors.append("(" + " AND ".join(ands) + ")")
        return "(" + " OR ".join(ors) + ")" if ors else "1 = 0"

    def select(
        self,
        native: Filter,
        spec: Sort,
        after: Sequence[Any] | None,
        limit: int | None,
        what: str | None = None,
        lock: bool = False,
    ) -> tuple[str, list[Any]]:
        """A ``SELECT`` of docs matching ``native`` in ``spec`` order after ``after``."""
        params: list[Any] = []
        where = self.where(native, params)
        if after is not None:
            where = f"{where} AND {self.seek(spec, after, params)}"
        cols = what or self.table.quoted_doc
        sql = f"SELECT {cols} FROM {self.table.quoted} WHERE {where}"
        if spec:
            sql += f" ORDER BY {self.order_by(spec)}"
        if limit is not None:
            sql += f" LIMIT {self.dialect.ph}"
            params.append(limit)
        if lock:
            sql += self.dialect.lock_suffix
        return sql, params

    def count(self, native: Filter) -> tuple[str, list[Any]]:
        """``SELECT count(*)`` for ``native``."""
        params: list[Any] = []
        where = self.where(native, params)
        return f"SELECT count(*) FROM {self.table.quoted} WHERE {where}", params

    def delete_where(self, native: Filter) -> tuple[str, list[Any]]:
        """``DELETE`` every row matching ``native``."""
        params: list[Any] = []
        where = self.where(native, params)
        return f"DELETE FROM {self.table.quoted} WHERE {where}", params
