"""Torn batches as tests: readers see an atomic batch whole or not at all, while it is
written and after its writer was killed (from another process when the engine is shared
between processes, see :meth:`AsyncTornBatchConformance.process_url`; else from a concurrent
task, or a thread when sync). Part of :class:`AsyncRobustnessConformance`."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

from persisty.query import F
from persisty.store import AsyncDatabase, AsyncStore, Edit
from persisty.testing._concurrency import in_thread_async, pause_async, run_concurrently_async
from persisty.testing._hooks_async import AsyncEngineHooks
from persisty.testing.models import Item

_WRITER = r"""
import sys
import persisty
from persisty.store import Edit
from persisty.testing.models import Item

url, namespace, batches, size, owner = sys.argv[1:6]
db = persisty.connect(url, namespace=namespace)
items = db.store(Item)
items.count()
print("ready", flush=True)
for b in range(int(batches)):
    results = items.edit_batch(
        [Edit.create(Item(owner=owner, title=f"{b}-{i}")) for i in range(int(size))],
        atomic=True)
    assert all(r.ok for r in results), [r for r in results if not r.ok][:1]
    print("batch", b, flush=True)
db.close()
"""


class AsyncTornBatchConformance(AsyncEngineHooks):
    """The torn-batch test; the class using it gives a ``database`` fixture."""

    batch_size = 100
    """Edits per atomic batch in the torn-batch tests (DynamoDB takes at most 100)."""

    def process_url(self, database: AsyncDatabase) -> str | None:
        """The URL another process opens the same database with; ``None`` when the engine
        lives in this process (``memory://``, ``sqlite://``): batches are then written by a
        concurrent task (thread when sync) instead of a killed process."""
        url = database.url
        if url.startswith("memory:") or url.rstrip("/") in ("sqlite:", "sqlite:/"):
            return None
        if url.startswith("sqlite:") and ":memory:" in url:
            return None
        return url

    async def test_readers_see_whole_batches(self, database: AsyncDatabase) -> None:
        items = database.store(Item)
        size = self.batch_size
        owner = "w" + os.urandom(3).hex()
        mine = F.owner == owner
        assert await items.count(mine) == 0  # the store is open before the writer runs
        url = self.process_url(database)
        if url is None:
            await self._in_process_batches(items, owner, size)
            return
        seen = await self._watch_writer(items, url, database, owner, 3, size, kill=False)
        assert seen <= {0, size, 2 * size, 3 * size}, sorted(seen)
        assert await items.count(mine) == 3 * size
        # killed while writing one more batch: afterwards the batch is there whole or not
        seen = await self._watch_writer(items, url, database, owner, 1, size, kill=True)
        assert seen <= {3 * size, 4 * size}, sorted(seen)
        after = await items.count(mine)
        assert after in (3 * size, 4 * size)
        assert len([i async for i in items.search_all(mine)]) == after
        other = await self.open_database(database.namespace or "")
        try:
            assert await other.store(Item).count(mine) == after
        finally:
            await other.close()

    async def _watch_writer(
        self,
        items: AsyncStore[Item],
        url: str,
        database: AsyncDatabase,
        owner: str,
        batches: int,
        size: int,
        kill: bool,
    ) -> set[int]:
        """Counts a reader sees while a writer process runs ``batches`` atomic batches
        (killed with SIGKILL a random moment after it starts, when ``kill``)."""
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
        proc = subprocess.Popen(  # noqa: S603
            [
                sys.executable,
                "-c",
                _WRITER,
                url,
                database.namespace or "",
                str(batches),
                str(size),
                owner,
            ],
            stdout=subprocess.PIPE,
            env=env,
        )
        assert proc.stdout is not None
        line = await in_thread_async(proc.stdout.readline)
        assert line.startswith(b"ready"), line
        deadline = time.monotonic() + (random.uniform(0.0, 0.3) if kill else 120)
        seen: set[int] = set()
        mine = F.owner == owner
        while proc.poll() is None:
            seen.add(await items.count(mine))
            if kill and time.monotonic() >= deadline:
                proc.send_signal(signal.SIGKILL)
                break
        await in_thread_async(proc.wait)
        proc.stdout.close()
        if not kill:
            assert proc.returncode == 0
        seen.add(await items.count(mine))
        return seen

    async def _in_process_batches(self, items: AsyncStore[Item], owner: str, size: int) -> None:
        mine = F.owner == owner
        seen: set[int] = set()
        done = False

        async def write() -> None:
            nonlocal done
            try:
                for b in range(3):
                    await items.edit_batch(
                        [Edit.create(Item(owner=owner, title=f"{b}-{i}")) for i in range(size)],
                        atomic=True,
                    )
                    await pause_async()
            finally:
                done = True

        async def read() -> None:
            while not done:
                seen.add(await items.count(mine))
                await pause_async()

        await run_concurrently_async([write, read])
        seen.add(await items.count(mine))
        assert seen <= {0, size, 2 * size, 3 * size}, sorted(seen)
