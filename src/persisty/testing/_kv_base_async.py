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
from persisty.testing._hooks_async import AsyncEngineHooks

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


class AsyncKVBase(AsyncEngineHooks):
    """What the kv conformance tests share: the database fixture (through the engine's
    hooks) and the counts of the concurrency tests. Subclasses implement
    :meth:`open_database`."""

    incr_workers = 8
    incr_processes = 4
    incr_each = 250
    local_incr_each = 50
    churn_steps = 80
    crash_points = 10_000
    apply_count = 200
    incr_native = False
    """Whether ``incr`` is one native engine operation here (the suite then checks that no
    write was ever tried again)."""

    def process_url(self) -> str | None:
        """A URL other processes can open the same engine with (``None``: in-process
        engines, whose multi-process tests do not apply)."""
        return None

    @pytest.fixture
    async def database(self) -> AsyncIterator[AsyncDatabase]:
        async with self.opened() as db:
            self.db_namespace = db.namespace
            yield db

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
