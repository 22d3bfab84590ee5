"""What the sync and async SQL stores share: URLs, dialects, tables, value conversion and the
SQL text of every statement (filters, orders, keyset seeks, writes, DDL, migration plans).

Every statement is built from the model's attribute names (quoted by the dialect) and
placeholders; values only ever travel as parameters.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import hashlib
import operator
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import msgspec
import sqlalchemy as sa
from sqlalchemy.dialects import mysql as sa_mysql
from sqlalchemy.dialects import postgresql as sa_pg
from sqlalchemy.dialects import sqlite as sa_sqlite
from sqlalchemy.engine.interfaces import Dialect as SaDialect

from persisty.errors import Conflict, PersistyError, Unavailable, ValidationError
from persisty.model import StoreMeta
from persisty.model._attr import AttrMeta, to_utc
from persisty.model._meta import etag_of, etags_of
from persisty.query import ALL, NONE, And, Compare, Filter, Not, Op, Or, Sort, TextQuery

META_TABLE = "persisty_meta"
ETAG = "_etag"
DOC = "_doc"
MAX_NAME = 60


# ---- URLs ------------------------------------------------------------------------------


@dataclass(frozen=True)
class SqlUrl:
    """A parsed SQL URL: which engine and how to reach it."""

    engine: str  # sqlite | postgresql | mysql
    path: str | None = None  # sqlite file; None in memory
    conninfo: str = ""  # postgresql
    host: str = "127.0.0.1"
    port: int = 3306
    user: str = "root"
    password: str = ""
    database: str = ""
    query: dict[str, str] = field(default_factory=dict)

    @property
    def memory(self) -> bool:
        """An in-memory SQLite database (gone when the Database is closed)."""
        return self.engine == "sqlite" and self.path is None


def parse_url(url: str) -> SqlUrl:
    """``sqlite:///rel.db``, ``sqlite:////abs.db``, ``sqlite://`` (memory),
    ``postgresql://user:pw@host:port/db``, ``mysql://`` / ``mariadb://``."""
    parts = urlsplit(url)
    scheme = parts.scheme.split("+")[0].lower()
    query = dict(parse_qsl(parts.query))
    if scheme == "sqlite":
        path = parts.path[1:] if parts.path.startswith("/") else parts.path
        if parts.netloc:
            raise ValidationError("a sqlite URL has no host: sqlite:///file.db", field="url")
        if path in ("", ":memory:"):
            return SqlUrl("sqlite", None, query=query)
        return SqlUrl("sqlite", unquote(path), query=query)
    if scheme in ("postgresql", "postgres"):
        rest = url.split("://", 1)[1]
        return SqlUrl("postgresql", conninfo="postgresql://" + rest, query=query)
    if scheme in ("mysql", "mariadb"):
        return SqlUrl(
            "mysql",
            host=parts.hostname or "127.0.0.1",
            port=parts.port or 3306,
            user=unquote(parts.username or "root"),
            password=unquote(parts.password or ""),
            database=parts.path.lstrip("/"),
            query=query,
        )
    raise ValidationError(f"not a SQL URL: {scheme!r}", field="url")


# ---- columns -----------------------------------------------------------------------------


_DATETIME_TEXTS = msgspec.json.Decoder(list[str | None])


def _sqlite_datetimes(values: list[Any]) -> list[str | None]:
    """:func:`_sqlite_datetime` of each value (``None`` kept) in a few passes over one
    buffer: msgspec writes UTC datetimes as ``2024-01-02T03:04:05[.ffffff]Z`` (the fraction
    only when non-zero), which is our format once ``T`` and ``Z`` go and a fraction is
    padded in."""
    if not all(v is None or v.tzinfo is dt.UTC for v in values):
        return [None if v is None else _sqlite_datetime(v) for v in values]
    texts = _DATETIME_TEXTS.decode(
        msgspec.json.encode(values).replace(b"T", b" ").replace(b"Z", b"")
    )
    return [t if t is None or len(t) == 26 else t + ".000000" for t in texts]


def _json_text(v: Any) -> str:
    return msgspec.json.encode(v).decode()


_JSON_LINES = msgspec.json.Encoder()


def _json_texts(values: list[Any], optional: bool) -> list[Any]:
    """:func:`_json_text` of each value (``None`` kept when ``optional``) in one encoder
    call and one split (JSON never holds a raw newline)."""
    if optional and any(v is None for v in values):
        return [None if v is None else _json_text(v) for v in values]
    texts = _JSON_LINES.encode_lines(values).decode().split("\n")
    texts.pop()
    return texts


def _enum_value(v: Any) -> Any:
    return v.value if isinstance(v, enum.Enum) else v


def _sqlite_datetime(v: dt.datetime) -> str:
    if v.tzinfo is not dt.UTC:
        v = to_utc(v)
    return v.isoformat(" ", "microseconds")[:26]  # fixed width: sorts as text


def _naive_utc(v: dt.datetime) -> dt.datetime:
    return to_utc(v).replace(tzinfo=None)


def _uuid_hex(v: Any) -> str:
    return v.hex if isinstance(v, uuid.UUID) else uuid.UUID(str(v)).hex


def _family(a: AttrMeta) -> str:
    if a.kind == "enum":
        values = [m.value for m in a.enum_type or ()]
        if values and all(isinstance(v, str) for v in values):
            return "str"
        if values and all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            return "int"
        return "json"
    if a.kind in ("list", "dict", "struct", "any"):
        return "json"
    return a.kind


@dataclass
class Column:
    """One attribute's column: its SQL name, family and how values become parameters."""

    name: str
    attr: AttrMeta
    family: str
    nullable: bool
    conv: Callable[[Any], Any] | None
    quoted: str
    placeholder: str


@dataclass
class Dialect:
    """The differences between engines that persisty's SQL cares about."""

    name: str  # sqlite | postgresql | mysql
    sa: SaDialect
    ph: str  # the driver's placeholder
    begin_sql: str
    lower_fn: str = "lower({})"

    def quote(self, name: str) -> str:
        """A quoted identifier (names come from the model, never from user values)."""
        return str(self.sa.identifier_preparer.quote_identifier(name))

    def conv(self, family: str, enum_attr: bool = False) -> Callable[[Any], Any] | None:
        """Python value -> driver parameter for a column family (``None``: unchanged)."""
        if family == "json":
            return _json_text
        if family in ("str", "int"):
            return _enum_value if enum_attr else None
        table: dict[str, Callable[[Any], Any]] = {}
        if self.name == "sqlite":
            table = {
                "datetime": _sqlite_datetime,
                "date": dt.date.isoformat,
                "uuid": _uuid_hex,
                "decimal": float,
                "bool": int,
            }
        elif self.name == "mysql":
            table = {"datetime": _naive_utc, "uuid": _uuid_hex, "bool": int}
        return table.get(family)

    def sa_type(self, col: Column, indexed: bool) -> Any:
        """The SQLAlchemy column type of a column on this dialect."""
        fam = col.family
        if self.name == "postgresql":
            return {
                "str": sa.Text(collation="C"),
                "int": sa.BigInteger(),
                "float": sa.Double(),
                "bool": sa.Boolean(),
                "datetime": sa.DateTime(timezone=True),
                "date": sa.Date(),
                "uuid": sa.Uuid(),
                "decimal": sa.Numeric(),
                "bytes": sa.LargeBinary(),
                "json": sa_pg.JSONB(),
            }[fam]
        if self.name == "mysql":
            if fam == "str":
                if indexed:
                    size = min(int(col.attr.constraints.get("max_length") or 255), 255)
                    return sa_mysql.VARCHAR(size, collation="utf8mb4_nopad_bin")
                return sa_mysql.LONGTEXT(collation="utf8mb4_nopad_bin")
            if fam == "bytes":
                return sa_mysql.VARBINARY(255) if indexed else sa_mysql.LONGBLOB()
            return {
                "int": sa.BigInteger(),
                "float": sa_mysql.DOUBLE(),
                "bool": sa.Boolean(),
                "datetime": sa_mysql.DATETIME(fsp=6),
                "date": sa.Date(),
                "uuid": sa_mysql.CHAR(32, collation="utf8mb4_nopad_bin"),
                "decimal": sa_mysql.DECIMAL(65, 30),
                "json": sa.JSON(),
            }[fam]
        return {
            "str": sa.Text(),
            "int": sa.BigInteger(),
            "float": sa.Double(),
            "bool": sa.Boolean(),
            "datetime": sa.DateTime(),
            "date": sa.Date(),
            "uuid": sa.CHAR(32),
            "decimal": sa.Numeric(),
            "bytes": sa.LargeBinary(),
            "json": sa.JSON(),
        }[fam]

    def doc_type(self) -> Any:
        """The hidden document column: the item's canonical JSON (what its etag hashes)."""
        if self.name == "postgresql":
            return sa.Text()
        if self.name == "mysql":
            return sa_mysql.LONGBLOB()
        return sa.LargeBinary()


def make_dialect(engine: str) -> Dialect:
    """The :class:`Dialect` of ``sqlite``, ``postgresql`` or ``mysql``."""
    if engine == "sqlite":
        return Dialect("sqlite", sa_sqlite.dialect(), "?", "BEGIN IMMEDIATE", "persisty_lower({})")
    if engine == "postgresql":
        pg: SaDialect = sa_pg.psycopg.dialect()  # type: ignore[no-untyped-call]
        return Dialect("postgresql", pg, "%s", "BEGIN", 'lower({} COLLATE "und-x-icu") COLLATE "C"')
    return Dialect("mysql", sa_mysql.pymysql.dialect(), "%s", "START TRANSACTION")


def _short(name: str) -> str:
    if len(name) <= MAX_NAME:
        return name
    return name[: MAX_NAME - 9] + "_" + hashlib.sha1(name.encode()).hexdigest()[:8]  # noqa: S324


def table_name(meta: StoreMeta, namespace: str | None) -> str:
    """The table of a store: ``<namespace>_<store name>`` (or the store name)."""
    return _short(f"{namespace}_{meta.name}" if namespace else meta.name)


# ---- one store's table and statements -------------------------------------------------------


class TableSchema:
    """A store's table on one dialect, and the SQL of its fixed statements (built once)."""

    def __init__(
        self, meta: StoreMeta, dialect: Dialect, namespace: str | None, metadata: sa.MetaData
    ) -> None:
        self.meta = meta
        self.dialect = dialect
        self.name = table_name(meta, namespace)
        d = dialect
        q = d.quote
        self.quoted = q(self.name)
        indexed = {a for ix in meta.indexes for a in ix.attrs} | set(meta.key.attrs)
        self.columns: list[Column] = []
        for a in meta.attrs:
            fam = _family(a)
            ph = f"CAST({d.ph} AS JSONB)" if fam == "json" and d.name == "postgresql" else d.ph
            self.columns.append(
                Column(
                    a.name,
                    a,
                    fam,
                    a.optional or fam == "json",
                    d.conv(fam, a.kind == "enum"),
                    q(a.name),
                    ph,
                )
            )
        self.by_name = {c.name: c for c in self.columns}
        self.key_cols = [self.by_name[k] for k in meta.key.attrs]
        self.str_cols = [c for c in self.columns if c.attr.kind == "str"]
        self.nullable: set[str] = {c.name for c in self.columns if c.nullable}

        sa_cols = [
            sa.Column(
                c.name,
                d.sa_type(c, c.name in indexed),
                primary_key=c.name in meta.key.attrs,
                nullable=c.name not in meta.key.attrs,
                autoincrement=False,
            )
            for c in self.columns
        ]
        sa_cols.append(sa.Column(ETAG, sa.String(32), nullable=False))
        sa_cols.append(sa.Column(DOC, d.doc_type(), nullable=False))
        kw: dict[str, Any] = {}
        if d.name == "mysql":
            kw = {
                "mysql_engine": "InnoDB",
                "mysql_charset": "utf8mb4",
                "mysql_collate": "utf8mb4_nopad_bin",
            }
        if self.name in metadata.tables:
            metadata.remove(metadata.tables[self.name])
        self.table = sa.Table(self.name, metadata, *sa_cols, **kw)
        self.indexes: list[sa.Index] = []
        self.index_attrs: dict[str, tuple[str, ...]] = {}
        for ix in meta.indexes:
            elements: list[Any] = []
            for attr_name in ix.attrs:
                col = self.table.c[attr_name]
                if d.name == "postgresql" and self.by_name[attr_name].nullable:
                    elements.append(col.asc().nulls_first())
                else:
                    elements.append(col)
            name = _short(ix.name or f"ix_{self.name}_{'_'.join(ix.attrs)}")
            kw = {}
            if d.name == "mysql" and not ix.unique:  # a prefix for TEXT columns
                kw["mysql_length"] = {
                    a: 255 for a in ix.attrs if self.by_name[a].family in ("str", "bytes")
                }
            self.indexes.append(sa.Index(name, *elements, unique=ix.unique, **kw))
            self.index_attrs[name] = ix.attrs

        # fixed statements
        ph = d.ph
        cols = [c.quoted for c in self.columns] + [q(ETAG), q(DOC)]
        phs = [c.placeholder for c in self.columns] + [ph, ph]
        self.key_where = " AND ".join(f"{c.quoted} = {ph}" for c in self.key_cols)
        t = self.quoted
        self.sql_insert = f"INSERT INTO {t} ({', '.join(cols)}) VALUES ({', '.join(phs)})"
        settable = [c for c in self.columns if c.name not in meta.key.attrs]
        sets = [f"{c.quoted} = {c.placeholder}" for c in settable]
        sets += [f"{q(ETAG)} = {ph}", f"{q(DOC)} = {ph}"]
        self.sql_update = f"UPDATE {t} SET {', '.join(sets)} WHERE {self.key_where}"
        self.sql_update_if = self.sql_update + f" AND {q(ETAG)} = {ph}"
        keys = ", ".join(c.quoted for c in self.key_cols)
        others = [c.quoted for c in settable] + [q(ETAG), q(DOC)]
        if d.name == "mysql":
            self.sql_upsert = (
                self.sql_insert
                + " ON DUPLICATE KEY UPDATE "
                + ", ".join(f"{c} = VALUES({c})" for c in others)
            )
        else:
            self.sql_upsert = (
                self.sql_insert
                + f" ON CONFLICT ({keys}) DO UPDATE SET "
                + (", ".join(f"{c} = excluded.{c}" for c in others))
            )
        self.sql_delete = f"DELETE FROM {t} WHERE {self.key_where}"
        self.sql_delete_if = self.sql_delete + f" AND {q(ETAG)} = {ph}"
        self.sql_get = f"SELECT {q(DOC)}, {q(ETAG)} FROM {t} WHERE {self.key_where}"
        # the row held until commit (SQLite's BEGIN IMMEDIATE holds the whole database)
        self.sql_get_locked = self.sql_get + ("" if d.name == "sqlite" else " FOR UPDATE")
        self._patch_cache: dict[tuple[tuple[str, ...], bool], str] = {}
        self.sql_etag = f"SELECT {q(ETAG)} FROM {t} WHERE {self.key_where}"
        self.sql_probe = f"SELECT * FROM {t} WHERE 1 = 0"
        self._settable = settable
        self._get_many_cache: dict[int, str] = {}
        self._order_cache: dict[Sort, str] = {}
        self._get_all = operator.attrgetter(*[c.name for c in self.columns])
        self._single = len(self.columns) == 1
        self._conv_at = [(i, c.conv) for i, c in enumerate(self.columns) if c.conv is not None]
        self._key_convs = [c.conv for c in self.key_cols]
        self._set_idx = [self.columns.index(c) for c in settable]
        self._key_idx = [self.columns.index(c) for c in self.key_cols]
        self.doc_text = d.name == "postgresql"

    # ---- parameters -----------------------------------------------------------------------

    def key_params(self, key: Sequence[Any]) -> tuple[Any, ...]:
        """Driver parameters for typed key values."""
        if len(key) == 1:
            c = self._key_convs[0]
            return (key[0],) if c is None else (c(key[0]),)
        return tuple(
            v if c is None or v is None else c(v) for v, c in zip(key, self._key_convs, strict=True)
        )

    def param(self, name: str, value: Any) -> Any:
        """The driver parameter for ``value`` of attribute ``name``."""
        c = self.by_name[name].conv
        return value if c is None or value is None else c(value)

    def values(self, item: Any) -> list[Any]:
        """Column values of ``item`` (in column order)."""
        out = [self._get_all(item)] if self._single else list(self._get_all(item))
        for i, c in self._conv_at:
            v = out[i]
            if v is not None:
                out[i] = c(v)
        return out

    def doc(self, item: Any) -> bytes | str:
        """The item's canonical JSON as the doc column stores it."""
        raw = self.meta.encode(item)
        return raw.decode() if self.doc_text else raw

    def insert_params(self, item: Any, tag: str) -> tuple[Any, ...]:
        """Parameters of :attr:`sql_insert`."""
        v = self.values(item)
        v.append(tag)
        v.append(self.doc(item))
        return tuple(v)

    def insert_row(self, item: Any) -> tuple[Any, ...]:
        """Parameters of :attr:`sql_insert`, the etag computed from the encoded item."""
        v = self.values(item)
        raw = self.meta.encode(item)
        v.append(etag_of(raw))
        v.append(raw.decode() if self.doc_text else raw)
        return tuple(v)

    def insert_rows(self, items: Sequence[Any]) -> Iterator[tuple[Any, ...]]:
        """:meth:`insert_row` for many items, built column by column and handed out one row
        at a time (executemany consumes them as it goes: no list of rows stays alive)."""
        raws = self.meta.encode_many(items)
        columns: list[Any] = []
        for c in self.columns:
            values = map(operator.attrgetter(c.name), items)
            conv = c.conv
            if conv is None:
                columns.append(values)
            elif conv is _sqlite_datetime:
                columns.append(_sqlite_datetimes(list(values)))
            elif conv is _json_text:
                columns.append(_json_texts(list(values), c.attr.optional))
            elif c.attr.optional:
                columns.append([v if v is None else conv(v) for v in values])
            else:
                columns.append(map(conv, values))
        columns.append(etags_of(raws))
        columns.append(map(bytes.decode, raws) if self.doc_text else raws)
        return zip(*columns, strict=True)

    def update_row(self, item: Any) -> tuple[Any, ...]:
        """Parameters of :attr:`sql_update`, the etag computed from the encoded item."""
        v = self.values(item)
        raw = self.meta.encode(item)
        out = [v[i] for i in self._set_idx]
        out.append(etag_of(raw))
        out.append(raw.decode() if self.doc_text else raw)
        out.extend(v[i] for i in self._key_idx)
        return tuple(out)

    def purge_sql(self, limit: int | None) -> str:
        """``DELETE`` of (at most ``limit``) rows whose expiry is at or before a parameter."""
        exp = self.by_name[self.meta.expires].quoted  # type: ignore[index]
        ph = self.dialect.ph
        bound = "" if limit is None else f" LIMIT {int(limit)}"
        if self.dialect.name == "mysql" or limit is None:
            return f"DELETE FROM {self.quoted} WHERE {exp} <= {ph}{bound}"
        keys = ", ".join(c.quoted for c in self.key_cols)
        lhs = f"({keys})" if len(self.key_cols) > 1 else keys
        return (
            f"DELETE FROM {self.quoted} WHERE {lhs} IN (SELECT {keys} FROM {self.quoted} "
            f"WHERE {exp} <= {ph}{bound})"
        )

    def patch_sql(self, names: tuple[str, ...], conditional: bool) -> str:
        """``UPDATE`` of the columns ``names`` (and etag and doc) of one row by key; with
        ``conditional`` only while the row's etag is the one given last."""
        found = self._patch_cache.get((names, conditional))
        if found is None:
            q = self.dialect.quote
            ph = self.dialect.ph
            sets = [f"{self.by_name[n].quoted} = {self.by_name[n].placeholder}" for n in names]
            sets += [f"{q(ETAG)} = {ph}", f"{q(DOC)} = {ph}"]
            found = f"UPDATE {self.quoted} SET {', '.join(sets)} WHERE {self.key_where}"
            if conditional:
                found += f" AND {q(ETAG)} = {ph}"
            self._patch_cache[(names, conditional)] = found
        return found

    def patch_params(
        self, names: tuple[str, ...], item: Any, key: Sequence[Any], expected: str | None = None
    ) -> tuple[str, list[Any]]:
        """The etag of ``item`` and the parameters of :meth:`patch_sql` for it."""
        by_name = self.by_name
        out: list[Any] = []
        for n in names:
            v = getattr(item, n)
            c = by_name[n].conv
            out.append(v if c is None or v is None else c(v))
        raw = self.meta.encode(item)
        tag = etag_of(raw)
        out.append(tag)
        out.append(raw.decode() if self.doc_text else raw)
        out.extend(self.key_params(key))
        if expected is not None:
            out.append(expected)
        return tag, out

    def update_params(self, item: Any, tag: str, expected: str | None = None) -> tuple[Any, ...]:
        """Parameters of :attr:`sql_update` (``sql_update_if`` with ``expected``)."""
        v = self.values(item)
        out = [v[i] for i in self._set_idx]
        out.append(tag)
        out.append(self.doc(item))
        out.extend(v[i] for i in self._key_idx)
        if expected is not None:
            out.append(expected)
        return tuple(out)

    def sql_get_many(self, n: int) -> str:
        """``SELECT doc, etag`` for ``n`` keys in one statement."""
        found = self._get_many_cache.get(n)
        if found is None:
            d = self.dialect
            if len(self.key_cols) == 1:
                where = f"{self.key_cols[0].quoted} IN ({', '.join([d.ph] * n)})"
            else:
                where = " OR ".join([f"({self.key_where})"] * n)
            found = (
                f"SELECT {d.quote(DOC)}, {d.quote(ETAG)}, {self.key_cols[0].quoted} "
                f"FROM {self.quoted} WHERE {where}"
            )
            if len(self._get_many_cache) < 256:
                self._get_many_cache[n] = found
        return found

    # ---- filters, orders, seeks -----------------------------------------------------------

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
            if not self.str_cols:
                return "1 = 0"
            parts = [self._text(c, Op.ICONTAINS, f.text, params) for c in self.str_cols]
            return "(" + " OR ".join(parts) + ")"
        raise ValidationError(f"not a filter: {f!r}")

    def _guard(self, c: Column, expr: str) -> str:
        if c.nullable:
            return f"({c.quoted} IS NOT NULL AND {expr})"
        return expr

    def _compare(self, f: Compare, params: list[Any]) -> str:
        c = self.by_name[f.attr]
        ph = self.dialect.ph
        col = c.quoted
        op = f.op
        value = f.value
        if op is Op.EXISTS:
            return f"{col} IS NOT NULL" if value else f"{col} IS NULL"
        if op is Op.EQ:
            if value is None:
                return f"{col} IS NULL"
            params.append(self.param(c.name, value))
            return self._guard(c, f"{col} = {ph}")
        if op is Op.NE:
            if value is None:
                return f"{col} IS NOT NULL"
            params.append(self.param(c.name, value))
            if c.nullable:
                return f"({col} IS NULL OR {col} <> {ph})"
            return f"{col} <> {ph}"
        if op is Op.IN:
            present = [v for v in value if v is not None]
            parts = []
            if present:
                params.extend(self.param(c.name, v) for v in present)
                parts.append(self._guard(c, f"{col} IN ({', '.join([ph] * len(present))})"))
            if len(present) != len(value):
                parts.append(f"{col} IS NULL")
            return parts[0] if len(parts) == 1 else "(" + " OR ".join(parts) + ")"
        if op in (Op.LT, Op.LTE, Op.GT, Op.GTE):
            sym = {Op.LT: "<", Op.LTE: "<=", Op.GT: ">", Op.GTE: ">="}[op]
            params.append(self.param(c.name, value))
            return self._guard(c, f"{col} {sym} {ph}")
        if op is Op.CONTAINS and c.attr.kind == "list":
            return self._guard(c, self._list_contains(c, value, params))
        return self._text(c, op, value, params)

    def _list_contains(self, c: Column, value: Any, params: list[Any]) -> str:
        d = self.dialect
        element = msgspec.to_builtins(value)
        if d.name == "postgresql":
            params.append(_json_text([element]))
            return f"{c.quoted} @> CAST({d.ph} AS JSONB)"
        if d.name == "mysql":
            params.append(_json_text(element))
            return f"JSON_CONTAINS({c.quoted}, {d.ph})"
        params.append(element)
        return (
            f"EXISTS (SELECT 1 FROM json_each({self.quoted}.{c.quoted}) AS je "
            f"WHERE je.value = {d.ph})"
        )

    def _text(self, c: Column, op: Op, value: str, params: list[Any]) -> str:
        d = self.dialect
        ph = d.ph
        lower = op in (Op.ICONTAINS, Op.ISTARTSWITH, Op.IENDSWITH)
        if value == "":
            return f"{c.quoted} IS NOT NULL"
        needle = value.lower() if lower else value
        subject = d.lower_fn.format(c.quoted) if lower else c.quoted
        kind = {
            Op.CONTAINS: "c",
            Op.ICONTAINS: "c",
            Op.STARTSWITH: "s",
            Op.ISTARTSWITH: "s",
            Op.ENDSWITH: "e",
            Op.IENDSWITH: "e",
        }[op]
        if d.name == "sqlite":  # LIKE ignores ASCII case in SQLite: use instr/substr
            if kind == "c":
                params.append(needle)
                expr = f"instr({subject}, {ph}) > 0"
            elif kind == "s":
                params.extend((len(needle), needle))
                expr = f"substr({subject}, 1, {ph}) = {ph}"
            else:
                params.extend((-len(needle), needle))
                expr = f"substr({subject}, {ph}) = {ph}"
            return self._guard(c, expr)
        escaped = needle.replace("!", "!!").replace("%", "!%").replace("_", "!_")
        pattern = {"c": f"%{escaped}%", "s": f"{escaped}%", "e": f"%{escaped}"}[kind]
        params.append(pattern)
        return self._guard(c, f"{subject} LIKE {ph} ESCAPE '!'")

    def order_by(self, spec: Sort) -> str:
        """``ORDER BY`` for a full sort, ``None`` first ascending and last descending."""
        found = self._order_cache.get(spec)
        if found is None:
            found = self._order_by(spec)
            if len(self._order_cache) < 256:
                self._order_cache[spec] = found
        return found

    def _order_by(self, spec: Sort) -> str:
        parts = []
        pg = self.dialect.name == "postgresql"
        for name, desc in spec:
            c = self.by_name[name]
            term = c.quoted + (" DESC" if desc else "")
            if pg and c.nullable:
                term += " NULLS LAST" if desc else " NULLS FIRST"
            parts.append(term)
        return ", ".join(parts)

    def seek(self, spec: Sort, after: Sequence[Any], params: list[Any]) -> str:
        """Rows strictly after the position ``after`` in ``spec`` (composite keyset seek)."""
        ph = self.dialect.ph
        ors = []
        for i, (name, desc) in enumerate(spec):
            ands = []
            for (prev, _), v in zip(spec[:i], after[:i], strict=True):
                pc = self.by_name[prev]
                if v is None:
                    ands.append(f"{pc.quoted} IS NULL")
                else:
                    params.append(self.param(prev, v))
                    ands.append(f"{pc.quoted} = {ph}")
            c = self.by_name[name]
            v = after[i]
            if v is None:
                if desc:
                    continue  # nothing sorts after None descending
                ands.append(f"{c.quoted} IS NOT NULL")
            else:
                params.append(self.param(name, v))
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
        cols = what or self.dialect.quote(DOC)
        sql = f"SELECT {cols} FROM {self.quoted} WHERE {where}"
        if spec:
            sql += f" ORDER BY {self.order_by(spec)}"
        if limit is not None:
            sql += f" LIMIT {self.dialect.ph}"
            params.append(limit)
        if lock and self.dialect.name != "sqlite":
            sql += " FOR UPDATE"
        return sql, params

    def count(self, native: Filter) -> tuple[str, list[Any]]:
        """``SELECT count(*)`` for ``native``."""
        params: list[Any] = []
        where = self.where(native, params)
        return f"SELECT count(*) FROM {self.quoted} WHERE {where}", params

    def delete_where(self, native: Filter) -> tuple[str, list[Any]]:
        """``DELETE`` every row matching ``native``."""
        params: list[Any] = []
        where = self.where(native, params)
        return f"DELETE FROM {self.quoted} WHERE {where}", params

    # ---- DDL --------------------------------------------------------------------------------

    def create_sql(self) -> list[str]:
        """``CREATE TABLE`` and ``CREATE INDEX`` statements (each ``IF NOT EXISTS``)."""
        out = [
            str(
                sa.schema.CreateTable(self.table, if_not_exists=True).compile(
                    dialect=self.dialect.sa
                )
            ).strip()
        ]
        out.extend(self.index_sql(ix) for ix in self.indexes)
        return out

    def index_sql(self, ix: sa.Index) -> str:
        """``CREATE INDEX IF NOT EXISTS`` for one index."""
        return str(
            sa.schema.CreateIndex(ix, if_not_exists=True).compile(dialect=self.dialect.sa)
        ).strip()

    def add_column_sql(self, name: str) -> str:
        """``ALTER TABLE … ADD COLUMN`` for one attribute."""
        spec = str(sa.schema.CreateColumn(self.table.c[name]).compile(dialect=self.dialect.sa))
        return f"ALTER TABLE {self.quoted} ADD COLUMN {spec.strip()}"

    def drop_sql(self) -> str:
        """``DROP TABLE IF EXISTS``."""
        return f"DROP TABLE IF EXISTS {self.quoted}"

    def expected_columns(self) -> list[str]:
        """Every column the table should have."""
        return [c.name for c in self.columns] + [ETAG, DOC]

    def type_of(self, name: str) -> str:
        """The SQL type of a column on this dialect."""
        return str(self.table.c[name].type.compile(dialect=self.dialect.sa))


# ---- migrations ----------------------------------------------------------------------------


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


def introspect_sql(dialect: Dialect) -> tuple[str, str]:
    """Queries for (column name, type) and index names of a table (one parameter each)."""
    ph = dialect.ph
    if dialect.name == "sqlite":
        return (
            f"SELECT name, type FROM pragma_table_info({ph})",
            f"SELECT name FROM pragma_index_list({ph})",
        )
    if dialect.name == "postgresql":
        return (
            "SELECT column_name, data_type FROM information_schema.columns "
            f"WHERE table_schema = current_schema() AND table_name = {ph}",
            f"SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() "
            f"AND tablename = {ph}",
        )
    return (
        "SELECT column_name, column_type FROM information_schema.columns "
        f"WHERE table_schema = DATABASE() AND table_name = {ph}",
        "SELECT DISTINCT index_name FROM information_schema.statistics "
        f"WHERE table_schema = DATABASE() AND table_name = {ph}",
    )


# ---- the meta table (page-key secret, sequences) -----------------------------------------------


def meta_table_sql(dialect: Dialect) -> str:
    """``CREATE TABLE IF NOT EXISTS persisty_meta``."""
    text = "VARCHAR(200) COLLATE utf8mb4_bin" if dialect.name == "mysql" else "VARCHAR(200)"
    return (
        f"CREATE TABLE IF NOT EXISTS {dialect.quote(META_TABLE)} "
        f"(name {text} PRIMARY KEY, value VARCHAR(200), num BIGINT)"
    )


def meta_insert_sql(dialect: Dialect) -> str:
    """Insert ``(name, value)`` unless the name is there."""
    ph = dialect.ph
    t = dialect.quote(META_TABLE)
    if dialect.name == "mysql":
        return f"INSERT IGNORE INTO {t} (name, value) VALUES ({ph}, {ph})"
    return f"INSERT INTO {t} (name, value) VALUES ({ph}, {ph}) ON CONFLICT (name) DO NOTHING"


def meta_add_sql(dialect: Dialect) -> str:
    """Insert ``(name, value)`` (a duplicate name is a unique violation)."""
    ph = dialect.ph
    return f"INSERT INTO {dialect.quote(META_TABLE)} (name, value) VALUES ({ph}, {ph})"


def meta_delete_sql(dialect: Dialect) -> str:
    """Delete one name."""
    return f"DELETE FROM {dialect.quote(META_TABLE)} WHERE name = {dialect.ph}"


def meta_get_sql(dialect: Dialect) -> str:
    """The value of one name."""
    return f"SELECT value FROM {dialect.quote(META_TABLE)} WHERE name = {dialect.ph}"


OUTBOX_TABLE = "persisty_outbox"


class OutboxSchema:
    """The outbox table (one per database, shared by the stores of every namespace) and its
    statements: a change is a row written in the transaction of its write, leased to the
    writer until ``claimed_until`` (seconds since the epoch), deleted once delivered."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        d = dialect
        key_type = (
            sa.String(200) if d.name != "mysql" else sa_mysql.VARCHAR(200, collation="utf8mb4_bin")
        )
        self.table = sa.Table(
            OUTBOX_TABLE,
            sa.MetaData(),
            sa.Column("id", sa.String(32), primary_key=True),
            sa.Column("store", key_type, nullable=False),
            sa.Column("kind", sa.String(10), nullable=False),
            sa.Column("item_key", sa.Text(), nullable=False),
            sa.Column("old", d.doc_type(), nullable=True),
            sa.Column("new", d.doc_type(), nullable=True),
            sa.Column("at", sa.Double(), nullable=False),
            sa.Column("claimed_until", sa.Double(), nullable=False),
        )
        self.index = sa.Index(
            f"ix_{OUTBOX_TABLE}_store_claimed", self.table.c.store, self.table.c.claimed_until
        )
        ph = d.ph
        t = d.quote(OUTBOX_TABLE)
        self.sql_insert = (
            f"INSERT INTO {t} (id, store, kind, item_key, old, new, at, "
            f"claimed_until) VALUES ({', '.join([ph] * 8)})"
        )
        self.sql_due = (
            f"SELECT id, claimed_until FROM {t} WHERE store = {ph} AND "
            f"claimed_until <= {ph} ORDER BY at, id LIMIT {ph}"
        )
        self.sql_claim = (
            f"UPDATE {t} SET claimed_until = {ph} WHERE id = {ph} AND claimed_until = {ph}"
        )
        self.sql_get = f"SELECT kind, item_key, old, new, at FROM {t} WHERE id = {ph}"
        self.sql_delete = f"DELETE FROM {t} WHERE id = {ph}"
        self.sql_count = f"SELECT count(*) FROM {t} WHERE store = {ph}"
        self.sql_delete_store = f"DELETE FROM {t} WHERE store = {ph}"

    def create_sql(self) -> list[str]:
        """``CREATE TABLE`` and ``CREATE INDEX``, each ``IF NOT EXISTS``."""
        sa_d = self.dialect.sa
        return [
            str(
                sa.schema.CreateTable(self.table, if_not_exists=True).compile(dialect=sa_d)
            ).strip(),
            str(
                sa.schema.CreateIndex(self.index, if_not_exists=True).compile(dialect=sa_d)
            ).strip(),
        ]

    def doc(self, raw: bytes | None) -> bytes | str | None:
        """A canonical JSON document as the doc columns hold it."""
        if raw is None:
            return None
        return raw.decode() if self.dialect.name == "postgresql" else raw


def sequence_sql(dialect: Dialect) -> list[str]:
    """Statements that increment a named counter; the last one returns its new value."""
    ph = dialect.ph
    t = dialect.quote(META_TABLE)
    if dialect.name == "mysql":
        return [
            f"INSERT INTO {t} (name, num) VALUES ({ph}, LAST_INSERT_ID(1)) "
            "ON DUPLICATE KEY UPDATE num = LAST_INSERT_ID(num + 1)",
            "SELECT LAST_INSERT_ID()",
        ]
    return [
        f"INSERT INTO {t} (name, num) VALUES ({ph}, 1) ON CONFLICT (name) "
        f"DO UPDATE SET num = {t}.num + 1 RETURNING num"
    ]


# ---- driver errors -> persisty errors ------------------------------------------------------------


def _field_in(text: str, schema: TableSchema | None) -> str | None:
    if schema is None:
        return None
    low = text.lower()
    for name in sorted(schema.index_attrs, key=len, reverse=True):
        if name.lower() in low:
            return schema.index_attrs[name][0]
    if "primary" in low or "pkey" in low:
        return schema.key_cols[0].name
    for c in schema.columns:
        n = c.name.lower()
        for form in (f"'{n}'", f'"{n}"', f".{n}", f"({n})", f" {n} ", f"{n}_"):
            if form in low:
                return c.name
    return None


def classify(
    dialect: Dialect, e: BaseException, schema: TableSchema | None = None
) -> PersistyError | None:
    """The persisty error for a driver error; ``None`` when the connection itself failed
    (the caller discards it and raises ``Unavailable``)."""
    text = str(e)
    name = type(e).__name__
    where = f"{schema.meta.name}: " if schema is not None else ""
    if isinstance(e, OverflowError):
        return ValidationError(f"{where}a number is out of range", field=None)
    if isinstance(e, ValueError | TypeError | ArithmeticError | UnicodeError) and (
        type(e).__module__ in ("builtins", "decimal")
    ):
        # raised converting a parameter, before the engine saw the statement: the value
        # is at fault, never the connection
        return ValidationError(f"{where}a value cannot be stored: {e}", field=None)
    if dialect.name == "sqlite":
        if name == "IntegrityError":
            if "UNIQUE" in text or "PRIMARY KEY" in text:
                field = _field_in(text, schema)
                return Conflict(f"{where}already exists (unique {field or 'key'})", field=field)
            return ValidationError(f"{where}{text}", field=_field_in(text, schema))
        if name in ("OperationalError", "DatabaseError") and (
            "locked" in text or "busy" in text or "unable to open" in text or "disk" in text
        ):
            return Unavailable(f"sqlite: {text}")
        if name in ("InterfaceError", "DataError"):
            return ValidationError(f"{where}{text}", field=_field_in(text, schema))
        return None if name == "OperationalError" else Unavailable(f"sqlite: {text}")
    if dialect.name == "postgresql":
        sqlstate = getattr(e, "sqlstate", None) or ""
        if sqlstate == "23505":
            field = _field_in(text, schema)
            return Conflict(f"{where}already exists (unique {field or 'key'})", field=field)
        if sqlstate.startswith(("22", "23", "54")):  # data, integrity, too large
            return ValidationError(f"{where}{text.splitlines()[0]}", field=_field_in(text, schema))
        if name in ("DataError",):
            return ValidationError(f"{where}{text}", field=_field_in(text, schema))
        if sqlstate.startswith("08") or name in ("OperationalError", "InterfaceError"):
            return None
        return Unavailable(f"postgresql: {text}")
    code = e.args[0] if e.args and isinstance(e.args[0], int) else 0
    if code == 1062:
        field = _field_in(text, schema)
        return Conflict(f"{where}already exists (unique {field or 'key'})", field=field)
    if code in (1406, 1264, 1366, 1292, 1265, 3140, 4025, 1048):
        return ValidationError(
            f"{where}{e.args[1] if len(e.args) > 1 else text}", field=_field_in(text, schema)
        )
    if code in (2003, 2006, 2013, 2055) or name in ("OperationalError", "InterfaceError"):
        return None
    return Unavailable(f"mysql: {text}")
