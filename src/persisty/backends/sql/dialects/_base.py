"""What a SQL engine has to say for persisty: the :class:`Dialect` base class.

A dialect owns everything that differs between engines: column types and value
conversions, placeholders, text matching, where ``NULL`` sorts, row locking, the
statements that introspect a table, upserts and counters, error translation, URL parsing
and its drivers. The rest of the SQL backend asks the dialect and never its name.
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import msgspec
import sqlalchemy as sa
from sqlalchemy.engine.interfaces import Dialect as SaDialect

from persisty.backends.sql._url import SqlUrl
from persisty.errors import Conflict, PersistyError, ValidationError
from persisty.model import AttrMeta, StoreMeta, to_utc

if TYPE_CHECKING:
    from persisty.backends.sql._table import Column, TableSchema


def json_text(v: Any) -> str:
    """A value as JSON text (what JSON columns are given)."""
    return msgspec.json.encode(v).decode()


def json_path(below: Sequence[str | int]) -> str | None:
    """``$.a."b.c"[2]``: the JSON path of SQLite and MariaDB for ``below`` (``None`` for a
    key holding a double quote, a backslash or a control character)."""
    out = "$"
    for seg in below:
        if isinstance(seg, int):
            out += f"[{seg}]"
        elif any(ch in seg for ch in '"\\') or any(ord(ch) < 32 for ch in seg):
            return None
        else:
            out += f'."{seg}"'
    return out


def enum_value(v: Any) -> Any:
    """An enum member's value (anything else as it is)."""
    return v.value if isinstance(v, enum.Enum) else v


def naive_utc(v: dt.datetime) -> dt.datetime:
    """A datetime in UTC without its zone (for engines whose columns hold no zone)."""
    return to_utc(v).replace(tzinfo=None)


def uuid_hex(v: Any) -> str:
    """A UUID as 32 hex digits."""
    return v.hex if isinstance(v, uuid.UUID) else uuid.UUID(str(v)).hex


def field_in(text: str, schema: TableSchema | None) -> str | None:
    """The attribute a driver's error message is about (an index, the key or a column)."""
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


def conflict(where: str, text: str, schema: TableSchema | None) -> Conflict:
    """The ``Conflict`` for a unique violation reported as ``text``."""
    found = field_in(text, schema)
    return Conflict(f"{where}already exists (unique {found or 'key'})", field=found)


class Dialect:
    """One SQL engine: subclass it, set the class attributes, override what differs, and
    :func:`persisty.backends.sql.register_dialect` it (the built-in dialects are
    ``dialects/sqlite.py``, ``postgresql.py`` and ``mysql.py``).

    Identifiers are quoted by the SQLAlchemy dialect (``sa_dialect``); every value travels
    as a parameter.
    """

    name: ClassVar[str]
    """The engine's name (``SqlUrl.engine``)."""
    schemes: ClassVar[tuple[str, ...]]
    """The URL schemes it serves (register them with ``persisty.backends.register``)."""
    ph: ClassVar[str] = "%s"
    """The driver's placeholder."""
    begin_sql: ClassVar[str] = "BEGIN"
    lock_suffix: ClassVar[str] = " FOR UPDATE"
    """Appended to a ``SELECT`` whose rows are held until commit."""
    doc_is_text: ClassVar[bool] = False
    """Whether the document column holds text (else bytes)."""
    conversions: ClassVar[dict[str, Callable[[Any], Any]]] = {}
    """Python value -> driver parameter, per column family (others pass unchanged)."""
    drivers: ClassVar[tuple[type[Any], ...]] = ()
    """Its sync and async driver classes (``AsyncDriver`` / ``Driver`` subclasses)."""
    upsert_on_key_only: ClassVar[bool] = True
    """Whether its upsert looks at the key only (MySQL's fires on any unique index)."""
    sets_in_doc: ClassVar[bool] = False
    """Whether one statement can set attributes inside the document column without reading
    it, keeping every other value's text as it is (:meth:`doc_set`, :meth:`returning`);
    otherwise a patch reads first."""
    name_sql: ClassVar[str] = "VARCHAR(200)"
    """The SQL type of a short name compared byte for byte (the meta table's key)."""
    probe_sql: ClassVar[str | None] = None
    """A query run once per database before anything else; :meth:`probed` gets its rows."""

    lower_fn: str = "lower({})"
    """SQL lower-casing an expression the way Python's ``str.lower`` does."""

    def __init__(self) -> None:
        self.sa: SaDialect = self.sa_dialect()

    # ---- identifiers and connections ------------------------------------------------------

    def sa_dialect(self) -> SaDialect:
        """The SQLAlchemy dialect that compiles DDL and quotes names."""
        raise NotImplementedError

    def parse_url(self, url: str) -> SqlUrl:
        """The :class:`SqlUrl` of one of :attr:`schemes`."""
        raise NotImplementedError

    def quote(self, name: str) -> str:
        """A quoted identifier (names come from the model, never from user values)."""
        return str(self.sa.identifier_preparer.quote_identifier(name))

    def probed(self, rows: list[Any]) -> None:
        """Adapt to the server from the rows of :attr:`probe_sql`."""

    # ---- columns ----------------------------------------------------------------------------

    def conv(self, family: str, enum_attr: bool = False) -> Callable[[Any], Any] | None:
        """Python value -> driver parameter for a column family (``None``: unchanged)."""
        if family == "json":
            return json_text
        if family in ("str", "int"):
            return enum_value if enum_attr else None
        return self.conversions.get(family)

    def sa_type(self, col: Column, indexed: bool) -> Any:
        """The SQLAlchemy column type of a column."""
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
        }[col.family]

    def doc_type(self) -> Any:
        """The hidden document column: the item's canonical JSON (what its etag hashes)."""
        return sa.LargeBinary()

    def name_type(self) -> Any:
        """A short name compared byte for byte (meta and outbox keys)."""
        return sa.String(200)

    def placeholder(self, family: str) -> str:
        """The placeholder of a parameter for a column of ``family``."""
        return self.ph

    def table_options(self, meta: StoreMeta) -> dict[str, Any]:
        """Keyword arguments of the SQLAlchemy ``Table`` of ``meta`` (engine, charset,
        clustering …)."""
        return {}

    def index_element(self, col: Any, nullable: bool) -> Any:
        """One column of an index, ordered as :meth:`order_term` sorts it."""
        return col

    def index_options(self, unique: bool, families: dict[str, str]) -> dict[str, Any]:
        """Keyword arguments of the SQLAlchemy ``Index`` over attributes of ``families``."""
        return {}

    def doc(self, raw: bytes) -> bytes | str:
        """A canonical JSON document as the document columns hold it."""
        return raw.decode() if self.doc_is_text else raw

    # ---- queries ----------------------------------------------------------------------------

    def text_match(self, subject: str, kind: str, needle: str, params: list[Any]) -> str:
        """``subject`` contains (``kind`` ``c``), starts (``s``) or ends (``e``) with
        ``needle``, case as given; appends its parameters."""
        escaped = needle.replace("!", "!!").replace("%", "!%").replace("_", "!_")
        params.append({"c": f"%{escaped}%", "s": f"{escaped}%", "e": f"%{escaped}"}[kind])
        return f"{subject} LIKE {self.ph} ESCAPE '!'"

    def list_contains(self, table: str, column: str, element: Any, params: list[Any]) -> str:
        """The JSON list in ``column`` holds ``element`` (builtins); appends its parameter."""
        raise NotImplementedError

    def json_value(
        self, column: str, below: Sequence[str | int], kind: str, params: list[Any]
    ) -> str | None:
        """The value at the path ``below`` in the JSON ``column`` as SQL of ``kind`` (``str``,
        ``int``, ``float``, ``bool``; ``any``: some non-``NULL`` value when one is there),
        ``NULL`` where it is missing, JSON ``null`` or of another JSON type; appends its
        parameters. ``None``: this engine cannot (the filter runs in Python)."""
        return None

    def order_term(self, column: str, desc: bool, nullable: bool) -> str:
        """One ``ORDER BY`` term: ``NULL`` first ascending, last descending (the default of
        SQLite and MySQL)."""
        return column + (" DESC" if desc else "")

    # ---- statements -------------------------------------------------------------------------

    def upsert_sql(self, insert: str, keys: Sequence[str], others: Sequence[str]) -> str:
        """``insert`` that overwrites the ``others`` columns of a row whose key is taken."""
        return (
            insert
            + f" ON CONFLICT ({', '.join(keys)}) DO UPDATE SET "
            + (", ".join(f"{c} = excluded.{c}" for c in others))
        )

    def purge_sql(self, table: str, expiry: str, keys: Sequence[str], limit: int | None) -> str:
        """``DELETE`` of (at most ``limit``) rows whose ``expiry`` is at or before a
        parameter."""
        bound = "" if limit is None else f" LIMIT {int(limit)}"
        if limit is None:
            return f"DELETE FROM {table} WHERE {expiry} <= {self.ph}"
        joined = ", ".join(keys)
        lhs = f"({joined})" if len(keys) > 1 else joined
        return (
            f"DELETE FROM {table} WHERE {lhs} IN (SELECT {joined} FROM {table} "
            f"WHERE {expiry} <= {self.ph}{bound})"
        )

    def doc_set(self, doc: str, names: Sequence[str]) -> str:
        """SQL of the document column ``doc`` with the attributes ``names`` set to one
        parameter each (the value's JSON text, in order), every other value's text kept
        (only when :attr:`sets_in_doc`)."""
        raise NotImplementedError

    def bound_patch_sql(
        self, table: str, columns: Sequence[tuple[str, str]], key: str, etag: str, doc: str
    ) -> str | None:
        """An ``UPDATE … RETURNING doc`` of one row by its one ``key`` column that sets each
        ``(attribute, quoted column)`` of ``columns`` to one parameter, used twice: as the
        column value and, bound as it is (a ``str`` or an ``int``, the engine writing its
        JSON), inside the document; the etag emptied. Parameters: the values, then the
        key. ``None`` when the dialect cannot (the values then travel as JSON texts,
        :meth:`doc_set`)."""
        return None

    def returning(self, update: str, doc: str) -> tuple[str, str | None]:
        """``update`` (whose ``SET`` holds a :meth:`doc_set`) made to give back the new
        ``doc``: the statement, and the query that returns it on the same connection when
        the statement itself cannot (``None``: it does, by ``RETURNING``)."""
        return f"{update} RETURNING {doc}", None

    def introspect_sql(self) -> tuple[str, str]:
        """Queries for (column name, type) and index names of a table (one parameter each)."""
        raise NotImplementedError

    def sequence_sql(self, table: str) -> list[str]:
        """Statements that increment the counter named by a parameter in ``table`` (``name``,
        ``num``); the last one returns its new value."""
        return [
            f"INSERT INTO {table} (name, num) VALUES ({self.ph}, 1) ON CONFLICT (name) "
            f"DO UPDATE SET num = {table}.num + 1 RETURNING num"
        ]

    # ---- errors -----------------------------------------------------------------------------

    def translate(
        self, e: BaseException, schema: TableSchema | None = None
    ) -> PersistyError | None:
        """The persisty error for a driver error; ``None`` when the connection itself failed
        (the caller discards it and raises ``Unavailable``)."""
        where = f"{schema.meta.name}: " if schema is not None else ""
        if isinstance(e, OverflowError):
            return ValidationError(f"{where}a number is out of range", field=None)
        if isinstance(e, ValueError | TypeError | ArithmeticError | UnicodeError) and (
            type(e).__module__ in ("builtins", "decimal")
        ):
            # raised converting a parameter, before the engine saw the statement: the value
            # is at fault, never the connection
            return ValidationError(f"{where}a value cannot be stored: {e}", field=None)
        return self.translate_driver(e, str(e), type(e).__name__, where, schema)

    def index_entry_too_large(self, message: str) -> bool:
        """Whether ``message`` (of a ``ValidationError`` from :meth:`translate`) says a value
        was too large for an index without naming the index."""
        return False

    def translate_driver(
        self, e: BaseException, text: str, name: str, where: str, schema: TableSchema | None
    ) -> PersistyError | None:
        """:meth:`translate` for an error the driver raised (``name`` is its class name,
        ``where`` prefixes messages)."""
        raise NotImplementedError


def family_of(a: AttrMeta) -> str:
    """The column family of an attribute: its kind, ``json`` for structures."""
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


DRIVER_PACKAGES = frozenset(
    {"sqlite3", "aiosqlite", "psycopg", "psycopg_pool", "pymysql", "asyncmy"}
)


def raised_in_driver(e: BaseException) -> bool:
    """Whether the innermost frame of ``e`` is in a database driver's code."""
    tb = e.__traceback__
    if tb is None:
        return False
    while tb.tb_next is not None:
        tb = tb.tb_next
    module = tb.tb_frame.f_globals.get("__name__") or ""
    return str(module).split(".")[0] in DRIVER_PACKAGES
