"""Backends by URL scheme. Each backend module defines a sync and an async Database class,
both constructed as ``Cls(url, namespace=..., secret=..., **options)``; modules are imported
only when their scheme is used, so an engine's driver is needed only by who uses it."""

from __future__ import annotations

import importlib
from typing import Any
from urllib.parse import urlsplit

from persisty.errors import Unavailable, ValidationError

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
    "dynamodb": ("persisty.backends.dynamodb", "DynamoDatabase", "AsyncDynamoDatabase",
                 "dynamodb"),
}

DEFAULT_URL = "sqlite:///persisty.db"


def database_class(url: str, asynchronous: bool) -> type[Any]:
    """The Database class that serves ``url``."""
    scheme = urlsplit(url).scheme.split("+")[0].lower()
    if scheme not in BACKENDS:
        known = ", ".join(sorted(BACKENDS))
        raise ValidationError(f"unknown URL scheme {scheme!r} (known: {known})", field="url")
    module_name, sync_name, async_name, extra = BACKENDS[scheme]
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        hint = f"; install persisty[{extra}]" if extra else ""
        raise Unavailable(f"the {scheme} backend cannot be loaded ({e}){hint}") from e
    cls: type[Any] = getattr(module, async_name if asynchronous else sync_name)
    return cls
