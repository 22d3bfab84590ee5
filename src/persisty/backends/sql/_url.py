"""A parsed SQL URL: which engine, and how its driver reaches it."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class SqlUrl:
    """A parsed SQL URL: which engine and how to reach it (each dialect parses its own
    schemes into one, see ``Dialect.parse_url``)."""

    engine: str  # the dialect's name: sqlite | postgresql | mysql | …
    path: str | None = None  # an embedded engine's file
    conninfo: str = ""  # a libpq-style connection URL
    host: str = "127.0.0.1"
    port: int = 0
    user: str = ""
    password: str = ""
    database: str = ""
    query: dict[str, str] = field(default_factory=dict)
    memory: bool = False
    """An in-memory embedded database (gone when the Database is closed): it lives in its
    one connection, which is never thrown away."""
