"""SQLite (the embedded default): ``sqlite:///file.db``, ``sqlite://`` in memory.

sqlite3 when sync, aiosqlite when async; WAL, a busy timeout, and Python's ``str.lower``
as the SQL function ``persisty_lower`` (SQLite's ``lower`` knows ASCII only).
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import parse_qsl, unquote, urlsplit

import msgspec
from sqlalchemy.dialects import sqlite as sa_sqlite
from sqlalchemy.engine.interfaces import Dialect as SaDialect

from persisty.backends.sql._url import SqlUrl
from persisty.backends.sql.dialects._base import (
    Dialect,
    conflict,
    field_in,
    json_path,
    uuid_hex,
)
from persisty.backends.sql.dialects._drivers import AsyncDriver, Driver
from persisty.errors import PersistyError, Unavailable, ValidationError
from persisty.model import StoreMeta, to_utc

if TYPE_CHECKING:
    from persisty.backends.sql._table import TableSchema


def sqlite_datetime(v: dt.datetime) -> str:
    """A datetime as fixed-width UTC text (so it sorts as text)."""
    if v.tzinfo is not dt.UTC:
        v = to_utc(v)
    return v.isoformat(" ", "microseconds")[:26]


_JSON_TYPES = {
    "str": "'text'",
    "int": "'integer'",
    "float": "'integer', 'real'",
    "bool": "'true', 'false'",
}
_DATETIME_TEXTS = msgspec.json.Decoder(list[str | None])


def sqlite_datetimes(values: list[Any]) -> list[str | None]:
    """:func:`sqlite_datetime` of each value (``None`` kept) in a few passes over one
    buffer: msgspec writes UTC datetimes as ``2024-01-02T03:04:05[.ffffff]Z`` (the fraction
    only when non-zero), which is our format once ``T`` and ``Z`` go and a fraction is
    padded in."""
    if not all(v is None or v.tzinfo is dt.UTC for v in values):
        return [None if v is None else sqlite_datetime(v) for v in values]
    texts = _DATETIME_TEXTS.decode(
        msgspec.json.encode(values).replace(b"T", b" ").replace(b"Z", b"")
    )
    return [t if t is None or len(t) == 26 else t + ".000000" for t in texts]


def _lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


_Conn = TypeVar("_Conn")


def _daemon_worker(pending: _Conn) -> _Conn:
    """The connection, with its worker thread (if the driver runs one) made a daemon.

    The async SQLite driver runs each connection in a thread of its own; a daemon thread
    lets a program that never closes its database exit (every write is committed when its
    call returns, so there is nothing to flush). Older versions are the thread themselves.
    """
    worker = getattr(pending, "_thread", pending)
    if isinstance(worker, threading.Thread) and not worker.is_alive():
        worker.daemon = True
    return pending


def _pragmas(url: SqlUrl, options: dict[str, Any]) -> list[str]:
    timeout = float(options.get("timeout", 30))
    out = [f"PRAGMA busy_timeout = {int(timeout * 1000)}"]
    if url.path is not None:
        # takes effect on a new database file only; 8192 makes bulk inserts cheaper and
        # point updates dearer than the default 4096 (docs/sql.md has the figures)
        page_size = int(options.get("page_size", 4096))
        cache_kib = int(options.get("cache_mb", 32)) * 1024
        out += [
            f"PRAGMA page_size = {page_size}",
            "PRAGMA journal_mode = WAL",
            "PRAGMA synchronous = NORMAL",
            f"PRAGMA cache_size = -{cache_kib}",
        ]
    return out


class SqliteDriver(Driver):
    """sqlite3 in autocommit mode (transactions are explicit)."""

    def connect(self) -> Any:
        import sqlite3

        conn = sqlite3.connect(
            self.url.path or ":memory:",
            isolation_level=None,
            timeout=float(self.options.get("timeout", 30)),
            check_same_thread=False,
        )
        for pragma in _pragmas(self.url, self.options):
            conn.execute(pragma)
        conn.create_function("persisty_lower", 1, _lower, deterministic=True)
        return conn


class AsyncSqliteDriver(AsyncDriver):
    """aiosqlite in autocommit mode (transactions are explicit)."""

    async def connect(self) -> Any:
        import aiosqlite

        conn = await _daemon_worker(
            aiosqlite.connect(
                self.url.path or ":memory:",
                isolation_level=None,
                timeout=float(self.options.get("timeout", 30)),
                check_same_thread=False,
            )
        )
        for pragma in _pragmas(self.url, self.options):
            await conn.execute(pragma)
        await conn.create_function("persisty_lower", 1, _lower, deterministic=True)
        return conn


class SqliteDialect(Dialect):
    """SQLite: ``?`` placeholders, ``BEGIN IMMEDIATE`` (which holds the whole database, so
    no row locks), text datetimes and UUIDs, ``instr``/``substr`` text matching."""

    name = "sqlite"
    schemes = ("sqlite",)
    ph = "?"
    begin_sql = "BEGIN IMMEDIATE"
    lock_suffix = ""
    # json_set keeps the text of every value it does not set; RETURNING since 3.35
    sets_in_doc = sqlite3.sqlite_version_info >= (3, 35)
    conversions = {
        "datetime": sqlite_datetime,
        "date": dt.date.isoformat,
        "uuid": uuid_hex,
        "decimal": float,
        "bool": int,
    }
    drivers = (SqliteDriver, AsyncSqliteDriver)
    lower_fn = "persisty_lower({})"

    def sa_dialect(self) -> SaDialect:
        return sa_sqlite.dialect()

    def table_options(self, meta: StoreMeta) -> dict[str, Any]:
        # a rowid table keeps a composite key twice (in the rows and in its autoindex)
        return {"sqlite_with_rowid": False} if meta.clustered else {}

    def parse_url(self, url: str) -> SqlUrl:
        """``sqlite:///rel.db``, ``sqlite:////abs.db``, ``sqlite://`` (memory)."""
        parts = urlsplit(url)
        query = dict(parse_qsl(parts.query))
        path = parts.path[1:] if parts.path.startswith("/") else parts.path
        if parts.netloc:
            raise ValidationError("a sqlite URL has no host: sqlite:///file.db", field="url")
        if path in ("", ":memory:"):
            return SqlUrl("sqlite", None, query=query, memory=True)
        return SqlUrl("sqlite", unquote(path), query=query)

    def text_match(self, subject: str, kind: str, needle: str, params: list[Any]) -> str:
        # LIKE ignores ASCII case in SQLite: instr and substr compare exactly
        if kind == "c":
            params.append(needle)
            return f"instr({subject}, ?) > 0"
        params.extend((len(needle) if kind == "s" else -len(needle), needle))
        return f"substr({subject}, 1, ?) = ?" if kind == "s" else f"substr({subject}, ?) = ?"

    def list_contains(self, table: str, column: str, element: Any, params: list[Any]) -> str:
        params.append(element)
        return f"EXISTS (SELECT 1 FROM json_each({table}.{column}) AS je WHERE je.value = ?)"

    def json_value(
        self, column: str, below: Sequence[str | int], kind: str, params: list[Any]
    ) -> str | None:
        path = json_path(below)
        if path is None:
            return None
        params.append(path)
        if kind == "any":
            return f"NULLIF(json_type({column}, ?), 'null')"
        params.append(path)
        types = _JSON_TYPES[kind]
        return f"CASE WHEN json_type({column}, ?) IN ({types}) THEN json_extract({column}, ?) END"

    def doc_set(self, doc: str, names: Sequence[str]) -> str:
        paths = "".join(f", '$.\"{n}\"', json(?)" for n in names)
        return f"CAST(json_set(CAST({doc} AS TEXT){paths}) AS BLOB)"

    def bound_patch_sql(
        self, table: str, columns: Sequence[tuple[str, str]], key: str, etag: str, doc: str
    ) -> str | None:
        # numbered parameters: each value once, for its column and inside the document
        # (json_set writes a bound TEXT as a JSON string, an INTEGER as a number)
        sets = [f"{col} = ?{i}" for i, (_, col) in enumerate(columns, 1)]
        paths = "".join(f", '$.\"{n}\"', ?{i}" for i, (n, _) in enumerate(columns, 1))
        sets += [f"{etag} = ''", f"{doc} = CAST(json_set(CAST({doc} AS TEXT){paths}) AS BLOB)"]
        return (
            f"UPDATE {table} SET {', '.join(sets)} WHERE {key} = ?{len(columns) + 1} "
            f"RETURNING {doc}"
        )

    def introspect_sql(self) -> tuple[str, str]:
        return (
            "SELECT name, type FROM pragma_table_info(?)",
            "SELECT name FROM pragma_index_list(?)",
        )

    def translate_driver(
        self, e: BaseException, text: str, name: str, where: str, schema: TableSchema | None
    ) -> PersistyError | None:
        if name == "IntegrityError":
            if "UNIQUE" in text or "PRIMARY KEY" in text:
                return conflict(where, text, schema)
            return ValidationError(f"{where}{text}", field=field_in(text, schema))
        if name in ("OperationalError", "DatabaseError") and (
            "locked" in text or "busy" in text or "unable to open" in text or "disk" in text
        ):
            return Unavailable(f"sqlite: {text}")
        if name in ("InterfaceError", "DataError"):
            return ValidationError(f"{where}{text}", field=field_in(text, schema))
        return None if name == "OperationalError" else Unavailable(f"sqlite: {text}")
