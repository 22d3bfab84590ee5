"""Migration plans: what brings an existing table up to a store's model. Additive steps
(tables, columns, indexes, defaults filled in) are run by ``migrate``; destructive
differences are reported, never applied."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from persisty.backends.sql._table import TableSchema


@dataclass
class Step:
    """One step of a migration plan; destructive steps are reported, never applied."""

    description: str
    sql: str | None = None
    params: tuple[Any, ...] = ()
    destructive: bool = False

    def __str__(self) -> str:
        if self.destructive or self.sql is None:
            return f"-- not applied: {self.description}"
        if self.params:
            return f"{self.sql}  -- {self.description}, parameters {list(self.params)!r}"
        return self.sql


def _coarse(type_text: str) -> str:
    t = type_text.lower()
    for word, fam in (
        ("json", "json"),
        ("bool", "bool"),
        ("tinyint(1)", "bool"),
        ("int", "int"),
        ("double", "float"),
        ("float", "float"),
        ("real", "float"),
        ("numeric", "num"),
        ("decimal", "num"),
        ("timestamp", "datetime"),
        ("datetime", "datetime"),
        ("date", "date"),
        ("uuid", "uuid"),
        ("blob", "bytes"),
        ("bytea", "bytes"),
        ("binary", "bytes"),
        ("char", "text"),
        ("text", "text"),
        ("clob", "text"),
    ):
        if word in t:
            return fam
    return t


def _compatible(expected: str, actual: str) -> bool:
    a, b = _coarse(expected), _coarse(actual)
    if a == b:
        return True
    same = [{"json", "text"}, {"uuid", "text"}, {"bool", "int"}]
    return any({a, b} <= s for s in same)


def plan_table(schema: TableSchema, columns: dict[str, str], indexes: set[str]) -> list[Step]:
    """What brings an existing table (``columns`` name -> SQL type, ``indexes``) up to
    ``schema``: additive steps to run and destructive differences to report."""
    steps: list[Step] = []
    if not columns:
        steps.extend(Step(f"create {schema.name}", sql) for sql in schema.create_sql())
        return steps
    lowered = {k.lower(): v for k, v in columns.items()}
    for name in schema.expected_columns():
        actual = lowered.get(name.lower())
        if actual is None:
            steps.append(Step(f"add column {schema.name}.{name}", schema.add_column_sql(name)))
            if name in schema.by_name:
                steps.extend(_backfill(schema, name))
        elif _coarse(actual) == "int" and _coarse(schema.type_of(name)) == "float":
            steps.extend(_widen(schema, name))
        elif not _compatible(schema.type_of(name), actual):
            steps.append(
                Step(
                    f"column {schema.name}.{name} is {actual} but the model wants "
                    f"{schema.type_of(name)}; change it yourself",
                    destructive=True,
                )
            )
    expected = {n.lower() for n in schema.expected_columns()}
    for name in columns:
        if name.lower() not in expected:
            steps.append(
                Step(
                    f"column {schema.name}.{name} is not in the model; "
                    "drop it yourself if it is no longer needed",
                    destructive=True,
                )
            )
    have = {i.lower() for i in indexes}
    for ix in schema.indexes:
        if str(ix.name).lower() not in have:
            steps.append(Step(f"create index {ix.name}", schema.index_sql(ix)))
    return steps


def _widen(schema: TableSchema, name: str) -> list[Step]:
    """An integer column whose attribute became a float: PostgreSQL and MariaDB change the
    column's type in place (every integer fits); SQLite's columns take either already."""
    engine = schema.dialect.name
    q = schema.dialect.quote
    if engine == "postgresql":
        sql = f"ALTER TABLE {schema.quoted} ALTER COLUMN {q(name)} TYPE {schema.type_of(name)}"
    elif engine == "mysql":
        spec = str(sa.schema.CreateColumn(schema.table.c[name]).compile(dialect=schema.dialect.sa))
        sql = f"ALTER TABLE {schema.quoted} MODIFY COLUMN {spec.strip()}"
    else:
        return []
    return [Step(f"widen {schema.name}.{name} to {schema.type_of(name)}", sql)]


def _backfill(schema: TableSchema, name: str) -> list[Step]:
    meta = schema.meta
    f = {x.name: x for x in dataclasses.fields(meta.cls)}[name]
    if f.default is not dataclasses.MISSING:
        default = f.default
    elif f.default_factory is not dataclasses.MISSING:
        default = f.default_factory()
    else:
        return [
            Step(
                f"{schema.name}.{name} is new and required without a default: existing "
                "rows cannot be read until they are rewritten",
                destructive=True,
            )
        ]
    if default is None:
        return []
    q = schema.dialect.quote
    sql = f"UPDATE {schema.quoted} SET {q(name)} = {schema.by_name[name].placeholder}"
    return [
        Step(f"fill {schema.name}.{name} with its default", sql, (schema.param(name, default),))
    ]
