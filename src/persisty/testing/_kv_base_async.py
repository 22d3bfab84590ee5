# mypy: disable-error-code="index, arg-type, union-attr, misc"
"""The base of the ``persisty.kv`` conformance suite: shared names and the database fixture
(the sync twin ``_kv_base_sync.py`` is generated from this file)."""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from persisty.store import AsyncDatabase

NAMESPACES = ["a_b", "axb", "a.b", "a__b", "x' OR 1=1 OR '", "%", "*", "", "a:b", "~1"]
KEYS = [
    "",
    "a:b",
    "~",
    "~0~1",
    "a__b",
    "a_b",
    "axb",
    "x' OR 1=1 OR '",
    "%",
    "ünï ☃",
    "*",
    "?",
    "[x]",
    "\\",
    "a/b",
    " lead",
    "trail ",
]
PICKLE_MARKS = (b"\x80\x04", b"\x80\x03", b"\x80\x05", b"(dp0", b"cbuiltins")


def _ns() -> str:
    return "ns-" + uuid.uuid4().hex[:8]


class AsyncKVBase:
    """What the kv conformance tests share: the database fixture, the engine's hooks
    and the counts of the concurrency tests. Subclasses implement :meth:`open_database`."""

    """``persisty.kv`` on one engine. Subclasses implement :meth:`open_database`."""

    incr_workers = 8
    incr_processes = 4
    incr_each = 250
    local_incr_each = 50
    crash_points = 10_000
    apply_count = 200
    incr_native = False
    """Whether ``incr`` is one native engine operation here (the suite then checks that no
    write was ever tried again)."""

    async def open_database(self, namespace: str) -> AsyncDatabase:
        """A database on the engine under test, isolated by ``namespace``."""
        raise NotImplementedError

    def process_url(self) -> str | None:
        """A URL other processes can open the same engine with (``None``: in-process
        engines, whose multi-process tests do not apply)."""
        return None

    async def drop(self, database: AsyncDatabase) -> None:
        """Remove what a test stored (before the database is closed)."""
        for store in list(database._stores.values()):
            await store.delete_all(None)

    @pytest.fixture
    async def database(self) -> AsyncIterator[AsyncDatabase]:
        self.db_namespace = "k" + uuid.uuid4().hex[:12]
        db = await self.open_database(self.db_namespace)
        try:
            yield db
        finally:
            try:
                await self.drop(db)
            finally:
                await db.close()

    def _child(self, *args: Any) -> list[str]:
        url = self.process_url()
        assert url is not None
        mode = "async" if asyncio.iscoroutinefunction(self.open_database) else "sync"
        return [
            sys.executable,
            "-m",
            "persisty.testing._kv_worker",
            args[0],
            url,
            self.db_namespace,
            *map(str, args[1:]),
            mode,
        ]
