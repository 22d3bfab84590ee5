"""A database's life as tests: a context manager that closes it, a second ``close()`` that
is harmless, and a program that never closes it still exiting promptly.

Mix it into a conformance class (it uses the same ``open_database`` hook)::

    class TestMine(AsyncStoreConformance, AsyncDatabaseLifecycleConformance):
        async def open_database(self, namespace):
            return persisty.aio.connect("mine://…", namespace=namespace)

The exit test runs a child Python that opens the database's URL with ``connect()``, writes,
reads and ends without closing it (a backend whose driver keeps a non-daemon worker thread,
as aiosqlite did, would hang there for ever); the backend must be importable by URL there.
"""

from __future__ import annotations

import inspect
import subprocess
import sys
import time
import uuid

from persisty.store import AsyncDatabase
from persisty.testing.models import Item

FORGETFUL = """
import asyncio, sys, time
import persisty
from persisty.testing.models import Item

url, namespace, mode = sys.argv[1:4]
if mode.startswith("async"):
    async def main() -> None:
        db = persisty.aio.connect(url, namespace=namespace)
        items = db.store(Item)
        made = await items.create(Item(owner="ann", title="t"))
        assert await items.read(items.key_of(made)) == made
        if mode.endswith("closed"):
            await db.close()
    asyncio.run(main())
else:
    db = persisty.connect(url, namespace=namespace)
    items = db.store(Item)
    made = items.create(Item(owner="ann", title="t"))
    assert items.read(items.key_of(made)) == made
    if mode.endswith("closed"):
        db.close()
print(time.time(), flush=True)
"""


def _exit_delay(url: str, mode: str) -> float:
    """Seconds from the child program's last line to its exit."""
    namespace = "x" + uuid.uuid4().hex[:12]
    proc = subprocess.run(  # noqa: S603
        [sys.executable, "-c", FORGETFUL, url, namespace, mode],
        capture_output=True,
        text=True,
        timeout=120,
    )
    exited = time.time()
    assert proc.returncode == 0, proc.stderr
    return exited - float(proc.stdout.split()[-1])


class AsyncDatabaseLifecycleConformance:
    """A context manager, ``close()`` twice, and exit without ``close()``."""

    async def open_database(self, namespace: str) -> AsyncDatabase:
        """A database on the engine under test, isolated by ``namespace``."""
        raise NotImplementedError

    async def test_a_database_is_a_context_manager_that_closes_it(self) -> None:
        db = await self.open_database("t" + uuid.uuid4().hex[:12])
        async with db as entered:
            assert entered is db
            items = db.store(Item)
            made = await items.create(Item(owner="ann", title="t"))
            assert await items.read(items.key_of(made)) == made
            await items.delete_all(None)
        await db.close()  # a second close is harmless

    async def test_a_database_never_closed_does_not_hold_up_exit(self) -> None:
        db = await self.open_database("t" + uuid.uuid4().hex[:12])
        mode = "async" if inspect.iscoroutinefunction(db.close) else "sync"
        url = db.url
        await db.close()
        delay = _exit_delay(url, mode)
        if delay >= 1.0:
            # a loaded machine tears any big interpreter down slowly: then the same program
            # closing its database is the measure (a forgotten close used to hang for ever)
            closed = _exit_delay(url, mode + "-closed")
            assert delay < closed + 1.0, f"exit took {delay:.2f} s ({closed:.2f} s closed)"
