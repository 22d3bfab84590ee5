"""A store's table on one dialect: its columns, indexes and DDL, the SQL of its fixed
statements (built once) and the parameters of each.

Every statement is built from the model's attribute names (quoted by the dialect) and
placeholders; values only ever travel as parameters.
"""

from __future__ import annotations

import hashlib
import operator
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
import sqlalchemy as sa

from persisty.backends.sql._compile import FilterCompiler
from persisty.backends.sql.dialects import Dialect
from persisty.backends.sql.dialects._base import family_of, json_text
from persisty.backends.sql.dialects.sqlite import sqlite_datetime, sqlite_datetimes
from persisty.model import AttrMeta, StoreMeta, etag_of, etags_of

ETAG = "_etag"
DOC = "_doc"
MAX_NAME = 60

_JSON_LINES = msgspec.json.Encoder()


def _json_texts(values: list[Any], optional: bool) -> list[Any]:
    """:func:`json_text` of each value (``None`` kept when ``optional``) in one encoder
    call and one split (JSON never holds a raw newline)."""
    if optional and any(v is None for v in values):
        return [None if v is None else json_text(v) for v in values]
    texts = _JSON_LINES.encode_lines(values).decode().split("\n")
    texts.pop()
    return texts


@dataclass
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


def _short(name: str) -> str:
    if len(name) <= MAX_NAME:
        return name
    return name[: MAX_NAME - 9] + "_" + hashlib.sha1(name.encode()).hexdigest()[:8]  # noqa: S324


def table_name(meta: StoreMeta, namespace: str | None) -> str:
    """The table of a store: ``<namespace>_<store name>`` (or the store name)."""
    return _short(f"{namespace}_{meta.name}" if namespace else meta.name)


class TableSchema:
    """A store's table on one dialect, and the SQL of its fixed statements (built once)."""

    def __init__(
        self, meta: StoreMeta, dialect: Dialect, namespace: str | None, metadata: sa.MetaData
    ) -> None:
        self.meta = meta
        self.dialect = dialect
        self.namespace = namespace
        self.name = table_name(meta, namespace)
        d = dialect
        q = d.quote
        self.quoted = q(self.name)
        self.quoted_doc = q(DOC)
        indexed = {a for ix in meta.indexes for a in ix.attrs} | set(meta.key.attrs)
        self.indexed = indexed
        self.columns: list[Column] = []
        for a in meta.attrs:
            fam = family_of(a)
            ph = d.placeholder(fam)
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
        if self.name in metadata.tables:
            metadata.remove(metadata.tables[self.name])
        self.table = sa.Table(self.name, metadata, *sa_cols, **d.table_options(meta))
        self.indexes: list[sa.Index] = []
        self.index_attrs: dict[str, tuple[str, ...]] = {}
        for ix in meta.indexes:
            elements = [
                d.index_element(self.table.c[a], self.by_name[a].nullable) for a in ix.attrs
            ]
            name = _short(ix.name or f"ix_{self.name}_{'_'.join(ix.attrs)}")
            kw = d.index_options(ix.unique, {a: self.by_name[a].family for a in ix.attrs})
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
        others = [c.quoted for c in settable] + [q(ETAG), q(DOC)]
        self.sql_upsert = d.upsert_sql(self.sql_insert, [c.quoted for c in self.key_cols], others)
        self.sql_delete = f"DELETE FROM {t} WHERE {self.key_where}"
        self.sql_delete_if = self.sql_delete + f" AND {q(ETAG)} = {ph}"
        self.sql_get = f"SELECT {q(DOC)}, {q(ETAG)} FROM {t} WHERE {self.key_where}"
        # the row held until commit (SQLite's BEGIN IMMEDIATE holds the whole database)
        self.sql_get_locked = self.sql_get + d.lock_suffix
        self.sql_get_live = self.sql_get
        """``sql_get`` of a row that has not expired: the instant is the last parameter (an
        expiry at or before it is expired, as ``purge_sql`` deletes)."""
        if meta.expires is not None:
            exp = self.by_name[meta.expires]
            self.sql_get_live += f" AND ({exp.quoted} IS NULL OR {exp.quoted} > {exp.placeholder})"
        self._patch_cache: dict[tuple[tuple[str, ...], bool], str] = {}
        self._blind_cache: dict[tuple[str, ...], tuple[str, str | None]] = {}
        self._bound_cache: dict[tuple[str, ...], str | None] = {}
        self.sql_etag = f"SELECT {q(ETAG)} FROM {t} WHERE {self.key_where}"
        # the etag of a row a patch without a read left empty, while its document is the one
        # it hashes (key, then the etag and the document)
        self.sql_fill_etag = (
            f"UPDATE {t} SET {q(ETAG)} = {ph} WHERE {self.key_where} "
            f"AND {q(ETAG)} = '' AND {q(DOC)} = {ph}"
        )
        self._settable = settable
        self._get_many_cache: dict[int, str] = {}
        self._get_all = operator.attrgetter(*[c.name for c in self.columns])
        self._single = len(self.columns) == 1
        self._conv_at = [(i, c.conv) for i, c in enumerate(self.columns) if c.conv is not None]
        self._key_convs = [c.conv for c in self.key_cols]
        self._set_idx = [self.columns.index(c) for c in settable]
        self._key_idx = [self.columns.index(c) for c in self.key_cols]
        self.doc_text = d.doc_is_text
        self.compiler = FilterCompiler(self)
        """The filter -> SQL compiler of this table (``where``, ``select``, ``count`` …)."""

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

    def largest_indexed(self, item: Any) -> str | None:
        """The key or indexed attribute whose value in ``item`` is the longest text or bytes
        (the one an engine refused as too large for an index)."""
        sizes = [
            (len(v), c.name)
            for c in self.columns
            if c.name in self.indexed and isinstance(v := getattr(item, c.name, None), str | bytes)
        ]
        return max(sizes)[1] if sizes else None

    def values(self, item: Any) -> list[Any]:
        """Column values of ``item`` (in column order)."""
        out = [self._get_all(item)] if self._single else list(self._get_all(item))
        for i, c in self._conv_at:
            v = out[i]
            if v is not None:
                out[i] = c(v)
        return out

    def doc(self, item: Any, raw: bytes | None = None) -> bytes | str:
        """The item's canonical JSON as the doc column stores it (``raw``: encoded already)."""
        if raw is None:
            raw = self.meta.encode(item)
        return raw.decode() if self.doc_text else raw

    def insert_params(self, item: Any, tag: str, raw: bytes | None = None) -> tuple[Any, ...]:
        """Parameters of :attr:`sql_insert` (``raw``: the item's canonical JSON when it is
        encoded already, as an ``Insert`` may carry it)."""
        v = self.values(item)
        v.append(tag)
        v.append(self.doc(item, raw))
        return tuple(v)

    def insert_row(self, item: Any) -> tuple[Any, ...]:
        """Parameters of :attr:`sql_insert`, the etag computed from the encoded item."""
        v = self.values(item)
        raw = self.meta.encode(item)
        v.append(etag_of(raw))
        v.append(raw.decode() if self.doc_text else raw)
        return tuple(v)

    def insert_rows(
        self, items: Sequence[Any], *, tagged: bool = True
    ) -> Iterator[tuple[Any, ...]]:
        """:meth:`insert_row` for many items, built column by column and handed out one row
        at a time (executemany consumes them as it goes: no list of rows stays alive).
        ``tagged=False`` stores empty etags, as a patch without a read does (a read computes
        them): for items whose etags are rarely asked for, such as time-series points."""
        raws = self.meta.encode_many(items)
        columns: list[Any] = []
        for c in self.columns:
            values = map(operator.attrgetter(c.name), items)
            conv = c.conv
            if conv is None:
                columns.append(values)
            elif conv is sqlite_datetime:
                columns.append(sqlite_datetimes(list(values)))
            elif conv is json_text:
                columns.append(_json_texts(list(values), c.attr.optional))
            elif c.attr.optional:
                columns.append([v if v is None else conv(v) for v in values])
            else:
                columns.append(map(conv, values))
        columns.append(etags_of(raws) if tagged else [""] * len(raws))
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
        return self.dialect.purge_sql(self.quoted, exp, [c.quoted for c in self.key_cols], limit)

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

    def blind_patch_sql(self, names: tuple[str, ...]) -> tuple[str, str | None]:
        """``UPDATE`` of the columns ``names`` and of the same attributes inside the document
        (by the engine, :meth:`Dialect.doc_set`), the etag left empty, giving back the new
        document (:meth:`Dialect.returning`: ``RETURNING``, or the query to run next on the
        same connection): parameters are the column values, the values' JSON texts, the
        key."""
        found = self._blind_cache.get(names)
        if found is None:
            d = self.dialect
            q = d.quote
            sets = [f"{self.by_name[n].quoted} = {self.by_name[n].placeholder}" for n in names]
            sets += [f"{q(ETAG)} = ''", f"{q(DOC)} = {d.doc_set(q(DOC), names)}"]
            update = f"UPDATE {self.quoted} SET {', '.join(sets)} WHERE {self.key_where}"
            found = d.returning(update, q(DOC))
            self._blind_cache[names] = found
        return found

    def bound_patch_sql(self, names: tuple[str, ...]) -> str | None:
        """:meth:`Dialect.bound_patch_sql` of the columns ``names`` (each value bound once,
        as it is), ``None`` when the dialect cannot or a column converts its values or the
        key is not one column."""
        if names in self._bound_cache:
            return self._bound_cache[names]
        found = None
        if len(self.key_cols) == 1 and all(
            c.conv is None for c in [self.key_cols[0], *(self.by_name[n] for n in names)]
        ):
            q = self.dialect.quote
            found = self.dialect.bound_patch_sql(
                self.quoted,
                [(n, self.by_name[n].quoted) for n in names],
                self.key_cols[0].quoted,
                q(ETAG),
                q(DOC),
            )
        self._bound_cache[names] = found
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

    def update_params(
        self, item: Any, tag: str, expected: str | None = None, raw: bytes | None = None
    ) -> tuple[Any, ...]:
        """Parameters of :attr:`sql_update` (``sql_update_if`` with ``expected``)."""
        v = self.values(item)
        out = [v[i] for i in self._set_idx]
        out.append(tag)
        out.append(self.doc(item, raw))
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
