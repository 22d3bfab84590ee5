"""How the file store code opens a database by URL, under one name per flavour so that the
generated sync code (``AsyncDatabases`` -> ``Databases``) opens sync databases."""

from __future__ import annotations

from typing import Any

from persisty import connect
from persisty.aio import connect as connect_async
from persisty.store import AsyncDatabase, Database


class AsyncDatabases:
    """Opens async databases."""

    @staticmethod
    def connect(url: str, **options: Any) -> AsyncDatabase:
        """``persisty.aio.connect(url, …)``."""
        return connect_async(url, **options)


class Databases:
    """Opens sync databases."""

    @staticmethod
    def connect(url: str, **options: Any) -> Database:
        """``persisty.connect(url, …)``."""
        return connect(url, **options)
