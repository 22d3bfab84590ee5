"""A program that forgets to close its database still exits promptly, on every backend; and
every database is a context manager (sync ``with``, async ``async with``) that closes it."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from tests.conftest import DYNAMODB_URL, MYSQL_URL, POSTGRES_URL, REDIS_URL

import persisty
from persisty import stored
from persisty.errors import PersistyError

FORGETFUL = """
import asyncio, sys, time
import persisty
from persisty import stored

@stored
class Thing:
    id: str
    n: int = 0

url, namespace, mode = sys.argv[1:4]
if mode.startswith("async"):
    async def main() -> None:
        db = persisty.aio.connect(url, namespace=namespace)   # never closed
        things = db.store(Thing)
        await things.create(Thing(id="a", n=1))
        assert (await things.read("a")) is not None
        assert await things.count(None) == 1
        if mode.endswith("closed"):
            await db.close()
    asyncio.run(main())
else:
    db = persisty.connect(url, namespace=namespace)           # never closed
    things = db.store(Thing)
    things.create(Thing(id="a", n=1))
    assert things.count(None) == 1
    if mode.endswith("closed"):
        db.close()
print(time.time(), flush=True)
"""


def engine_urls(tmp: Path) -> dict[str, str]:
    urls = {"memory": "memory://", "file": f"file://{tmp}/dir", "sqlite": f"sqlite:///{tmp}/x.db",
            "sqlite-memory": "sqlite://", "postgresql": POSTGRES_URL, "mysql": MYSQL_URL,
            "redis": REDIS_URL}
    assert DYNAMODB_URL, "DynamoDB needs moto_server: run under scripts/test (scripts/services)"
    urls["dynamodb"] = DYNAMODB_URL
    return urls


ENGINES = ["memory", "file", "sqlite", "sqlite-memory", "postgresql", "mysql", "redis",
           "dynamodb"]


def _exit_delay(url: str, mode: str) -> float:
    """Seconds from the program's last line to its exit."""
    namespace = "x" + uuid.uuid4().hex[:12]
    proc = subprocess.run([sys.executable, "-c", FORGETFUL, url, namespace, mode],
                          capture_output=True, text=True, timeout=120)
    exited = time.time()
    assert proc.returncode == 0, proc.stderr
    return exited - float(proc.stdout.split()[-1])


@pytest.mark.parametrize("mode", ["async", "sync"])
@pytest.mark.parametrize("engine", ENGINES)
def test_a_database_never_closed_does_not_hold_up_exit(engine: str, mode: str,
                                                       tmp_path: Path) -> None:
    url = engine_urls(tmp_path)[engine]
    delay = _exit_delay(url, mode)
    if delay >= 1.0:
        # a loaded machine tears any big interpreter down slowly: then the same program
        # closing its database is the measure (a forgotten close used to hang for ever)
        closed = _exit_delay(url, mode + "-closed")
        assert delay < closed + 1.0, f"{engine}: exit took {delay:.2f} s ({closed:.2f} s closed)"


@stored
class Box:
    id: str


@pytest.mark.parametrize("engine", ENGINES)
async def test_every_database_is_a_context_manager(engine: str, tmp_path: Path) -> None:
    url = engine_urls(tmp_path)[engine]
    namespace = "x" + uuid.uuid4().hex[:12]
    with persisty.connect(url, namespace=namespace) as db:
        assert isinstance(db, persisty.Database)
        db.store(Box).create(Box(id="a"))
        assert db.store(Box).read("a") == Box(id="a")
    async with persisty.aio.connect(url, namespace=namespace) as adb:
        assert isinstance(adb, persisty.aio.AsyncDatabase)
        assert await adb.store(Box).read("a") == Box(id="a") or engine.endswith("memory")
    if engine in ("postgresql", "mysql", "sqlite"):
        with pytest.raises(PersistyError):  # closed: the SQL pool refuses to go on
            await adb.store(Box).read("a")
