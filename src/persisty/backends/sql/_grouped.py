"""The SQL of one grouped aggregate over a store's table (see ``AsyncSqlGroups``).

Every name in the statement comes from the model (quoted by the dialect), every value is a
parameter; the only literals are this module's own constants (a number's text pattern).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from persisty.backends.sql._table import TableSchema
from persisty.errors import ValidationError
from persisty.query import Filter

FUNCTIONS = ("count", "sum", "min", "max")

# the text of a JSON integer short enough for a 64-bit sum of a few thousand, and of a
# float (a fraction or an exponent: how every JSON encoder writes a float)
_INT_RX = "^-?[0-9]{1,15}$"
_FLOAT_RX = "^-?[0-9]+([.][0-9]+([eE][-+]?[0-9]+)?|[eE][-+]?[0-9]+)$"


@dataclass(frozen=True)
class SqlAggregate:
    """One aggregate column: ``fn`` of ``attr`` (``count`` of every row when ``attr`` is
    ``None``). With ``number`` the attribute is text holding a JSON number, read as one
    on the engine: ``"int"`` an integer of at most 15 digits, ``"float"`` a number with a
    fraction or an exponent; a row whose text is no such number is ``NULL`` there (so
    ``count`` counts the rows that are)."""

    fn: Literal["count", "sum", "min", "max"]
    attr: str | None = None
    number: Literal["int", "float"] | None = None


@dataclass(frozen=True)
class SqlBucket:
    """Groups by ``(attr - origin) // width`` of an int attribute (rows must have
    ``attr >= origin``, and ``attr - origin`` must fit 64 bits)."""

    attr: str
    origin: int
    width: int


def _number(schema: TableSchema, quoted: str, number: str) -> str:
    d = schema.dialect.name
    if d == "sqlite":  # JSON1: a number's type, then its text's form
        if number == "int":
            test = f"json_type({quoted}) = 'integer' AND length(ltrim({quoted}, '-')) <= 15"
        else:
            test = (
                f"json_type({quoted}) = 'real' AND "
                f"(instr({quoted}, '.') > 0 OR instr(lower({quoted}), 'e') > 0)"
            )
        cast = "INTEGER" if number == "int" else "REAL"
        value = f"CASE WHEN {test} THEN CAST({quoted} AS {cast}) END"
        return f"CASE WHEN json_valid({quoted}) THEN {value} END"
    rx = _INT_RX if number == "int" else _FLOAT_RX
    if d == "postgresql":
        cast = "BIGINT" if number == "int" else "DOUBLE PRECISION"
        return f"CASE WHEN {quoted} ~ '{rx}' THEN CAST({quoted} AS {cast}) END"
    cast = "SIGNED" if number == "int" else "DOUBLE"
    return f"CASE WHEN {quoted} REGEXP '{rx}' THEN CAST({quoted} AS {cast}) END"


def _column(schema: TableSchema, name: str) -> str:
    column = schema.by_name.get(name)
    if column is None:
        raise ValidationError(f"{schema.meta.name} has no attribute {name!r}", field=name)
    return column.quoted


def grouped_sql(
    schema: TableSchema,
    native: Filter,
    aggregates: tuple[SqlAggregate, ...],
    bucket: SqlBucket | None,
) -> tuple[str, list[Any]]:
    """``SELECT [bucket,] aggregates … WHERE native [GROUP BY bucket ORDER BY bucket]``."""
    if not aggregates:
        raise ValidationError("at least one aggregate", field="aggregates")
    ph = schema.dialect.ph
    params: list[Any] = []
    cols: list[str] = []
    if bucket is not None:
        if type(bucket.width) is not int or bucket.width <= 0:
            raise ValidationError("the bucket width must be a positive int", field="width")
        if type(bucket.origin) is not int:
            raise ValidationError("the bucket origin must be an int", field="origin")
        div = " DIV " if schema.dialect.name == "mysql" else " / "
        attr = _column(schema, bucket.attr)
        cols.append(f"({attr} - {ph}){div}{ph}")
        params += [bucket.origin, bucket.width]
    for a in aggregates:
        if a.fn not in FUNCTIONS:
            raise ValidationError(f"fn must be one of {', '.join(FUNCTIONS)}", field="fn")
        if a.attr is None:
            if a.fn != "count" or a.number is not None:
                raise ValidationError(f"{a.fn} needs an attribute", field="attr")
            cols.append("count(*)")
            continue
        expr = _column(schema, a.attr)
        if a.number is not None:
            expr = _number(schema, expr, a.number)
        cols.append(f"{a.fn}({expr})")
    where = schema.compiler.where(native, params)
    sql = f"SELECT {', '.join(cols)} FROM {schema.quoted} WHERE {where}"
    if bucket is not None:
        sql += " GROUP BY 1 ORDER BY 1"
    return sql, params
