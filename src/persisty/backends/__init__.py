"""Backends by URL scheme, and the registry that adds more.

Each backend has a sync and an async Database class, both constructed as
``Cls(url, namespace=..., secret=..., **options)``. The built-in backends' modules are
imported only when their scheme is used, so an engine's driver is needed only by who uses
it. Other schemes come from :func:`register` or from an installed package's entry point
in the group ``persisty.backends`` (the entry point's name is the scheme; it loads a
``(SyncDatabase, AsyncDatabase)`` pair, or a module with ``Database`` and ``AsyncDatabase``).

Example::

    from persisty.backends import register

    register("toy", ToyDatabase, AsyncToyDatabase)
    db = persisty.connect("toy://")
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import Any
from urllib.parse import urlsplit

from persisty.errors import Unavailable, ValidationError

ENTRY_POINT_GROUP = "persisty.backends"

BACKENDS: dict[str, tuple[str, str, str, str]] = {
    # scheme: (module, sync class, async class, extra that installs its drivers)
    "memory": ("persisty.backends.memory", "MemoryDatabase", "AsyncMemoryDatabase", ""),
    "file": ("persisty.backends.directory", "DirectoryDatabase", "AsyncDirectoryDatabase", ""),
    "sqlite": ("persisty.backends.sql", "SqlDatabase", "AsyncSqlDatabase", "sql"),
    "postgresql": ("persisty.backends.sql", "SqlDatabase", "AsyncSqlDatabase", "postgres"),
    "postgres": ("persisty.backends.sql", "SqlDatabase", "AsyncSqlDatabase", "postgres"),
    "mysql": ("persisty.backends.sql", "SqlDatabase", "AsyncSqlDatabase", "mysql"),
    "mariadb": ("persisty.backends.sql", "SqlDatabase", "AsyncSqlDatabase", "mysql"),
    "redis": ("persisty.backends.redis", "RedisDatabase", "AsyncRedisDatabase", "redis"),
    "dynamodb": ("persisty.backends.dynamodb", "DynamoDatabase", "AsyncDynamoDatabase", "dynamodb"),
}

DEFAULT_URL = "sqlite:///persisty.db"

_registered: dict[str, tuple[type[Any], type[Any]]] = {}


def register(scheme: str, sync_cls: type[Any], async_cls: type[Any]) -> None:
    """Serve URLs of ``scheme`` with these Database classes (``connect`` uses the first,
    ``persisty.aio.connect`` the second). A registration wins over a built-in backend and
    an entry point of the same scheme.

    Example::

        register("toy", ToyDatabase, AsyncToyDatabase)
        persisty.connect("toy://").store(Note)
    """
    name = scheme.lower()
    if not name.isidentifier():
        raise ValidationError(f"a URL scheme is a name, not {scheme!r}", field="scheme")
    for cls in (sync_cls, async_cls):
        if not isinstance(cls, type):
            raise TypeError(f"register({scheme!r}, …) takes two Database classes, not {cls!r}")
    _registered[name] = (sync_cls, async_cls)


def schemes() -> list[str]:
    """Every URL scheme that ``connect`` accepts here (built-in, registered, installed)."""
    installed = {ep.name.lower() for ep in entry_points(group=ENTRY_POINT_GROUP)}
    return sorted(set(BACKENDS) | set(_registered) | installed)


def _from_entry_point(scheme: str) -> tuple[type[Any], type[Any]] | None:
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name.lower() != scheme:
            continue
        try:
            loaded = ep.load()
        except Exception as e:  # any failure of a third-party import is the same to the user
            raise Unavailable(f"the {scheme} backend ({ep.value}) cannot be loaded: {e}") from e
        pair = (
            loaded
            if isinstance(loaded, tuple)
            else (getattr(loaded, "Database", None), getattr(loaded, "AsyncDatabase", None))
        )
        if len(pair) != 2 or not all(isinstance(c, type) for c in pair):
            raise Unavailable(
                f"the entry point {ep.value!r} for {scheme!r} gives no "
                "(Database, AsyncDatabase) pair"
            )
        _registered[scheme] = (pair[0], pair[1])
        return _registered[scheme]
    return None


def database_class(url: str, asynchronous: bool) -> type[Any]:
    """The Database class that serves ``url``."""
    scheme = urlsplit(url).scheme.split("+")[0].lower()
    pair = _registered.get(scheme)
    if pair is None and scheme not in BACKENDS:
        pair = _from_entry_point(scheme)
    if pair is not None:
        return pair[1] if asynchronous else pair[0]
    if scheme not in BACKENDS:
        known = ", ".join(schemes())
        raise ValidationError(f"unknown URL scheme {scheme!r} (known: {known})", field="url")
    module_name, sync_name, async_name, extra = BACKENDS[scheme]
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        hint = f"; install persisty[{extra}]" if extra else ""
        raise Unavailable(f"the {scheme} backend cannot be loaded ({e}){hint}") from e
    cls: type[Any] = getattr(module, async_name if asynchronous else sync_name)
    return cls


__all__ = ["BACKENDS", "DEFAULT_URL", "ENTRY_POINT_GROUP", "database_class", "register", "schemes"]
