"""MariaDB and MySQL: ``mysql://user:password@host:port/db`` (or ``mariadb://``).

PyMySQL when sync, asyncmy when async: utf8mb4, UTC, strict mode, and a row count that
counts the rows matched (not only those changed).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote, urlsplit

import sqlalchemy as sa
from sqlalchemy.dialects import mysql as sa_mysql
from sqlalchemy.engine.interfaces import Dialect as SaDialect

from persisty.backends.sql._url import SqlUrl
from persisty.backends.sql.dialects._base import (
    Dialect,
    conflict,
    field_in,
    json_path,
    json_text,
    naive_utc,
    uuid_hex,
)
from persisty.backends.sql.dialects._drivers import AsyncDriver, Driver
from persisty.errors import ConcurrentChange, PersistyError, Unavailable, ValidationError
from persisty.model import StoreMeta

if TYPE_CHECKING:
    from persisty.backends.sql._table import Column, TableSchema

_INIT = "SET time_zone = '+00:00', sql_mode = 'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION'"
BINARY = "utf8mb4_nopad_bin"
_JSON_TYPES = {
    "str": "'STRING'",
    "int": "'INTEGER'",
    "float": "'INTEGER', 'DOUBLE'",
    "bool": "'BOOLEAN'",
}


class MysqlDriver(Driver):
    """PyMySQL (its cursors are context managers and take tuples)."""

    def connect(self) -> Any:
        import pymysql  # type: ignore[import-untyped, unused-ignore]
        from pymysql.constants import CLIENT  # type: ignore[import-untyped, unused-ignore]

        u = self.url
        return pymysql.connect(
            host=u.host,
            port=u.port,
            user=u.user,
            password=u.password,
            database=u.database,
            charset="utf8mb4",
            autocommit=True,
            client_flag=CLIENT.FOUND_ROWS,
            init_command=_INIT,
        )

    def fetch(self, conn: Any, sql: str, params: Sequence[Any]) -> list[Any]:
        with conn.cursor() as cur:
            cur.execute(sql, tuple(params))
            return list(cur.fetchall())

    def run(self, conn: Any, sql: str, params: Sequence[Any] = ()) -> int:
        with conn.cursor() as cur:
            cur.execute(sql, tuple(params))
            count: int = cur.rowcount
            return count

    def run_many(self, conn: Any, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        with conn.cursor() as cur:
            cur.executemany(sql, list(rows))  # it takes sequences only


class AsyncMysqlDriver(AsyncDriver):
    """asyncmy (the asyncio twin of PyMySQL)."""

    async def connect(self) -> Any:
        import asyncmy  # type: ignore[import-untyped, unused-ignore]
        from asyncmy.constants import CLIENT  # type: ignore[import-untyped, unused-ignore]

        u = self.url
        return await asyncmy.connect(
            host=u.host,
            port=u.port,
            user=u.user,
            password=u.password,
            database=u.database,
            charset="utf8mb4",
            autocommit=True,
            client_flag=CLIENT.FOUND_ROWS,
            init_command=_INIT,
        )

    async def fetch(self, conn: Any, sql: str, params: Sequence[Any]) -> list[Any]:
        async with conn.cursor() as cur:
            await cur.execute(sql, tuple(params))
            return list(await cur.fetchall())

    async def run(self, conn: Any, sql: str, params: Sequence[Any] = ()) -> int:
        async with conn.cursor() as cur:
            await cur.execute(sql, tuple(params))
            count: int = cur.rowcount
            return count

    async def run_many(self, conn: Any, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        async with conn.cursor() as cur:
            await cur.executemany(sql, list(rows))  # it takes sequences only

    async def close(self, conn: Any) -> None:
        conn.close()


class MysqlDialect(Dialect):
    """MariaDB/MySQL: binary utf8mb4 collation (so text compares like Python), naive UTC
    datetimes, ``INSERT … ON DUPLICATE KEY UPDATE``, ``LAST_INSERT_ID`` counters."""

    name = "mysql"
    schemes = ("mysql", "mariadb")
    begin_sql = "START TRANSACTION"
    conversions = {"datetime": naive_utc, "uuid": uuid_hex, "bool": int}
    drivers = (MysqlDriver, AsyncMysqlDriver)
    upsert_on_key_only = False
    sets_in_doc = True
    name_sql = "VARCHAR(200) COLLATE utf8mb4_bin"

    def sa_dialect(self) -> SaDialect:
        return sa_mysql.pymysql.dialect()

    def parse_url(self, url: str) -> SqlUrl:
        """``mysql://user:pw@host:port/db``; the user is ``root`` and the port 3306 unless
        given."""
        parts = urlsplit(url)
        return SqlUrl(
            "mysql",
            host=parts.hostname or "127.0.0.1",
            port=parts.port or 3306,
            user=unquote(parts.username or "root"),
            password=unquote(parts.password or ""),
            database=parts.path.lstrip("/"),
            query=dict(parse_qsl(parts.query)),
        )

    def sa_type(self, col: Column, indexed: bool) -> Any:
        fam = col.family
        if fam == "str":
            if indexed:
                size = min(int(col.attr.constraints.get("max_length") or 255), 255)
                return sa_mysql.VARCHAR(size, collation=BINARY)
            return sa_mysql.LONGTEXT(collation=BINARY)
        if fam == "bytes":
            return sa_mysql.VARBINARY(255) if indexed else sa_mysql.LONGBLOB()
        return {
            "int": sa.BigInteger(),
            "float": sa_mysql.DOUBLE(),
            "bool": sa.Boolean(),
            "datetime": sa_mysql.DATETIME(fsp=6),
            "date": sa.Date(),
            "uuid": sa_mysql.CHAR(32, collation=BINARY),
            "decimal": sa_mysql.DECIMAL(65, 30),
            "json": sa.JSON(),
        }[fam]

    def doc_type(self) -> Any:
        return sa_mysql.LONGBLOB()

    def name_type(self) -> Any:
        return sa_mysql.VARCHAR(200, collation="utf8mb4_bin")

    def table_options(self, meta: StoreMeta) -> dict[str, Any]:
        # InnoDB clusters every table by its primary key: ``clustered`` needs nothing
        return {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4", "mysql_collate": BINARY}

    def index_options(self, unique: bool, families: dict[str, str]) -> dict[str, Any]:
        if unique:
            return {}
        # a prefix for TEXT columns
        return {"mysql_length": {a: 255 for a, fam in families.items() if fam in ("str", "bytes")}}

    def list_contains(self, table: str, column: str, element: Any, params: list[Any]) -> str:
        params.append(json_text(element))
        return f"JSON_CONTAINS({column}, %s)"

    def json_value(
        self, column: str, below: Sequence[str | int], kind: str, params: list[Any]
    ) -> str | None:
        path = json_path(below)
        if path is None:
            return None
        params.append(path)
        at = f"JSON_EXTRACT({column}, %s)"
        if kind == "any":
            return f"NULLIF(JSON_TYPE({at}), 'NULL')"
        params.append(path)
        value = {
            "str": f"JSON_UNQUOTE(JSON_EXTRACT({column}, %s))",
            "int": f"CAST(JSON_EXTRACT({column}, %s) AS SIGNED)",
            "float": f"CAST(JSON_EXTRACT({column}, %s) AS DOUBLE)",
            "bool": f"(JSON_EXTRACT({column}, %s) = 'true')",
        }[kind]
        expr = f"CASE WHEN JSON_TYPE({at}) IN ({_JSON_TYPES[kind]}) THEN {value} END"
        return f"({expr}) COLLATE {BINARY}" if kind == "str" else expr

    def doc_set(self, doc: str, names: Sequence[str]) -> str:
        # JSON_SET keeps the text of every other value (it adds spaces between tokens);
        # no UPDATE … RETURNING: the new document goes to a session variable as well
        paths = "".join(f", '$.\"{n}\"', JSON_EXTRACT(%s, '$')" for n in names)
        return f"(@persisty_doc := JSON_SET(CONVERT({doc} USING utf8mb4){paths}))"

    def returning(self, update: str, doc: str) -> tuple[str, str | None]:
        return update, "SELECT @persisty_doc"

    def upsert_sql(self, insert: str, keys: Sequence[str], others: Sequence[str]) -> str:
        return (
            insert + " ON DUPLICATE KEY UPDATE " + ", ".join(f"{c} = VALUES({c})" for c in others)
        )

    def purge_sql(self, table: str, expiry: str, keys: Sequence[str], limit: int | None) -> str:
        bound = "" if limit is None else f" LIMIT {int(limit)}"
        return f"DELETE FROM {table} WHERE {expiry} <= %s{bound}"

    def introspect_sql(self) -> tuple[str, str]:
        return (
            "SELECT column_name, column_type FROM information_schema.columns "
            "WHERE table_schema = DATABASE() AND table_name = %s",
            "SELECT DISTINCT index_name FROM information_schema.statistics "
            "WHERE table_schema = DATABASE() AND table_name = %s",
        )

    def sequence_sql(self, table: str) -> list[str]:
        return [
            f"INSERT INTO {table} (name, num) VALUES (%s, LAST_INSERT_ID(1)) "
            "ON DUPLICATE KEY UPDATE num = LAST_INSERT_ID(num + 1)",
            "SELECT LAST_INSERT_ID()",
        ]

    def translate_driver(
        self, e: BaseException, text: str, name: str, where: str, schema: TableSchema | None
    ) -> PersistyError | None:
        code = e.args[0] if e.args and isinstance(e.args[0], int) else 0
        if code == 1062:
            return conflict(where, text, schema)
        if code in (1213, 1205):  # deadlock, lock wait timeout: this write was rolled back
            return ConcurrentChange(
                f"{where}a concurrent change collided with this one; nothing was written, try again"
            )
        if code in (1406, 1264, 1366, 1292, 1265, 3140, 4025, 1048):
            return ValidationError(
                f"{where}{e.args[1] if len(e.args) > 1 else text}", field=field_in(text, schema)
            )
        if code in (2003, 2006, 2013, 2055) or name in ("OperationalError", "InterfaceError"):
            return None
        return Unavailable(f"mysql: {text}")
