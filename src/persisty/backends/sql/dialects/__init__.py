"""SQL dialects: one class per engine, found by URL scheme.

The built-in ones are SQLite, PostgreSQL and MariaDB/MySQL. Another engine is one
:class:`Dialect` subclass passed to :func:`register_dialect` (and its schemes passed to
``persisty.backends.register`` with ``SqlDatabase`` / ``AsyncSqlDatabase``).

Example::

    from persisty.backends.sql import dialect_for

    assert dialect_for("mariadb://root@127.0.0.1/app").name == "mysql"
"""

from __future__ import annotations

from urllib.parse import urlsplit

from persisty.backends.sql._url import SqlUrl
from persisty.backends.sql.dialects._base import Dialect, raised_in_driver
from persisty.backends.sql.dialects._drivers import AsyncDriver, Driver, driver_for
from persisty.backends.sql.dialects.mysql import MysqlDialect
from persisty.backends.sql.dialects.postgresql import PostgresDialect
from persisty.backends.sql.dialects.sqlite import SqliteDialect
from persisty.errors import ValidationError

_BY_SCHEME: dict[str, type[Dialect]] = {}


def register_dialect(cls: type[Dialect]) -> None:
    """Serve the URL schemes of ``cls`` (a :class:`Dialect` subclass) with it.

    Example::

        register_dialect(SqliteDialect)   # already registered: the built-ins are
    """
    if not (isinstance(cls, type) and issubclass(cls, Dialect)):
        raise TypeError(f"not a Dialect subclass: {cls!r}")
    for scheme in cls.schemes:
        _BY_SCHEME[scheme.lower()] = cls


for _builtin in (SqliteDialect, PostgresDialect, MysqlDialect):
    register_dialect(_builtin)


def _scheme(url: str) -> str:
    return urlsplit(url).scheme.split("+")[0].lower()


def dialect_for(url: str) -> Dialect:
    """A new :class:`Dialect` for the engine of ``url`` (each database has its own: a
    dialect may adapt to its server)."""
    cls = _BY_SCHEME.get(_scheme(url))
    if cls is None:
        raise ValidationError(f"not a SQL URL: {_scheme(url)!r}", field="url")
    return cls()


def parse_url(url: str) -> SqlUrl:
    """The :class:`SqlUrl` of ``url``: ``sqlite:///rel.db``, ``sqlite:////abs.db``,
    ``sqlite://`` (memory), ``postgresql://user:pw@host:port/db``, ``mysql://`` /
    ``mariadb://``.

    Example::

        assert parse_url("sqlite://").memory
    """
    return dialect_for(url).parse_url(url)


__all__ = [
    "AsyncDriver",
    "Dialect",
    "Driver",
    "MysqlDialect",
    "PostgresDialect",
    "SqlUrl",
    "SqliteDialect",
    "dialect_for",
    "driver_for",
    "parse_url",
    "raised_in_driver",
    "register_dialect",
]
