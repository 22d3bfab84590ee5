"""PostgreSQL: ``postgresql://user:password@host:port/db`` (or ``postgres://``).

psycopg 3 in autocommit mode, sync or async (it prepares statements after a few uses).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as sa_pg
from sqlalchemy.engine.interfaces import Dialect as SaDialect

from persisty.backends.sql._url import SqlUrl
from persisty.backends.sql.dialects._base import Dialect, conflict, field_in, json_text
from persisty.backends.sql.dialects._drivers import AsyncDriver, Driver
from persisty.errors import ConcurrentChange, PersistyError, Unavailable, ValidationError

if TYPE_CHECKING:
    from persisty.backends.sql._table import Column, TableSchema


_JSON_TYPES = {
    "str": ("string", "TEXT"),
    "int": ("number", "NUMERIC"),
    "float": ("number", "DOUBLE PRECISION"),
    "bool": ("boolean", "BOOLEAN"),
}


def _sql_text(text: str) -> str:
    """A SQL string literal of ``text`` (an attribute name from the model, never a value)."""
    return "'" + text.replace("'", "''") + "'"


class PostgresDriver(Driver):
    """psycopg 3, sync."""

    def connect(self) -> Any:
        import psycopg

        return psycopg.Connection.connect(self.url.conninfo, autocommit=True)

    def run_many(self, conn: Any, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        with conn.cursor() as cur:
            cur.executemany(sql, rows)


class AsyncPostgresDriver(AsyncDriver):
    """psycopg 3, asyncio."""

    async def connect(self) -> Any:
        import psycopg

        return await psycopg.AsyncConnection.connect(self.url.conninfo, autocommit=True)

    async def run_many(self, conn: Any, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        async with conn.cursor() as cur:
            await cur.executemany(sql, rows)


class PostgresDialect(Dialect):
    """PostgreSQL: ``C``-collated text, JSONB, ICU lower-casing, explicit ``NULLS``
    order (its default puts ``NULL`` last ascending)."""

    name = "postgresql"
    schemes = ("postgresql", "postgres")
    doc_is_text = True
    drivers = (PostgresDriver, AsyncPostgresDriver)
    probe_sql = "SELECT 1 FROM pg_collation WHERE collname = 'und-x-icu'"
    sets_in_doc = True

    def __init__(self) -> None:
        super().__init__()
        self.lower_fn = 'lower({} COLLATE "und-x-icu") COLLATE "C"'

    def sa_dialect(self) -> SaDialect:
        pg: SaDialect = sa_pg.psycopg.dialect()  # type: ignore[no-untyped-call]
        return pg

    def parse_url(self, url: str) -> SqlUrl:
        """``postgresql://user:pw@host:port/db``: handed to libpq as it is."""
        rest = url.split("://", 1)[1]
        return SqlUrl(
            "postgresql",
            conninfo="postgresql://" + rest,
            query=dict(parse_qsl(urlsplit(url).query)),
        )

    def probed(self, rows: list[Any]) -> None:
        if not rows:  # a server built without ICU: the database's own lower()
            self.lower_fn = 'lower({} COLLATE "default") COLLATE "C"'

    def sa_type(self, col: Column, indexed: bool) -> Any:
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
        }[col.family]

    def doc_type(self) -> Any:
        return sa.Text()

    def placeholder(self, family: str) -> str:
        return "CAST(%s AS JSONB)" if family == "json" else "%s"

    def index_element(self, col: Any, nullable: bool) -> Any:
        return col.asc().nulls_first() if nullable else col

    def order_term(self, column: str, desc: bool, nullable: bool) -> str:
        term = column + (" DESC" if desc else "")
        if nullable:
            term += " NULLS LAST" if desc else " NULLS FIRST"
        return term

    def list_contains(self, table: str, column: str, element: Any, params: list[Any]) -> str:
        params.append(json_text([element]))
        return f"{column} @> CAST(%s AS JSONB)"

    def json_value(
        self, column: str, below: Sequence[str | int], kind: str, params: list[Any]
    ) -> str | None:
        path = [str(s) for s in below]
        params.append(path)
        at = f"{column} #> CAST(%s AS TEXT[])"
        if kind == "any":
            return f"NULLIF(jsonb_typeof({at}), 'null')"
        params.append(path)
        jtype, cast = _JSON_TYPES[kind]
        value = f"CAST({column} #>> CAST(%s AS TEXT[]) AS {cast})"
        if kind == "str":
            value = f'({column} #>> CAST(%s AS TEXT[])) COLLATE "C"'
        return f"CASE WHEN jsonb_typeof({at}) = '{jtype}' THEN {value} END"

    def doc_set(self, doc: str, names: Sequence[str]) -> str:
        # the document is TEXT (JSONB would rewrite every value's text and reorder keys):
        # the set values first, then the others as json_each of the JSON type gives them,
        # their text and order untouched (the order of top-level keys decides nothing)
        head = " || ',' || ".join(
            f"{_sql_text(json_text(n) + ':')} || CAST(%s AS TEXT)" for n in names
        )
        taken = ", ".join(_sql_text(n) for n in names)
        rest = (
            "SELECT string_agg(',' || to_json(j.k)::text || ':' || j.v::text, '' ORDER BY j.n) "
            f"FROM json_each(CAST({doc} AS JSON)) WITH ORDINALITY AS j(k, v, n) "
            f"WHERE j.k NOT IN ({taken})"
        )
        return f"'{{' || {head} || COALESCE(({rest}), '') || '}}'"

    def introspect_sql(self) -> tuple[str, str]:
        return (
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name = %s",
            "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() "
            "AND tablename = %s",
        )

    def index_entry_too_large(self, message: str) -> bool:
        return "index row requires" in message or "index row size" in message

    def translate_driver(
        self, e: BaseException, text: str, name: str, where: str, schema: TableSchema | None
    ) -> PersistyError | None:
        sqlstate = getattr(e, "sqlstate", None) or ""
        if sqlstate == "23505":
            return conflict(where, text, schema)
        if sqlstate in ("40P01", "40001"):  # deadlock, serialization failure: rolled back
            return ConcurrentChange(
                f"{where}a concurrent change collided with this one; nothing was written, try again"
            )
        if sqlstate.startswith(("22", "23", "54")):  # data, integrity, too large
            return ValidationError(f"{where}{text.splitlines()[0]}", field=field_in(text, schema))
        if name in ("DataError",):
            return ValidationError(f"{where}{text}", field=field_in(text, schema))
        if sqlstate.startswith("08") or name in ("OperationalError", "InterfaceError"):
            return None
        return Unavailable(f"postgresql: {text}")
