"""``Increment`` from several processes at once: 8 processes x 500 increments of one counter
give exactly 4,000 on SQLite (a file), PostgreSQL, MariaDB and Redis, and none of them ever
retries (the SQL engines hold the row for the write; Redis adds in its patch script). Two
backends run fewer to keep the suite fast: a directory 8 x 50 (every write is an fsync'ed
file under a lock) and DynamoDB 8 x 10 (moto answers one request at a time, ~10 ms each,
and a contended increment there is a read and a conditional write that may be retried)."""

from __future__ import annotations

import multiprocessing
import os
import tempfile
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from tests.conftest import MYSQL_URL, POSTGRES_URL, REDIS_URL

import persisty
from persisty import Increment
from persisty.testing.models import Tally

WORKERS = 8
_DIR = tempfile.mkdtemp(prefix="persisty-increments-")


def _dynamodb_url() -> str:
    endpoint = os.environ.get("AWS_ENDPOINT_URL", "")
    if not endpoint:
        pytest.fail("AWS_ENDPOINT_URL is not set: run the tests with scripts/test")
    return f"dynamodb://?region=us-east-1&endpoint_url={endpoint}"


def _worker(url: str, namespace: str, rounds: int, start: Any, out: Any) -> None:
    db = persisty.connect(url, namespace=namespace)
    try:
        store = db.store(Tally)
        start.wait()
        for _ in range(rounds):
            store.patch("c", {"hits": Increment(1)})
        out.put(getattr(store, "retries", 0))
    finally:
        db.close()


def _drop(db: Any) -> None:
    for name in ("drop_tables", "drop"):
        if hasattr(db, name):
            getattr(db, name)()
            return


# engine: (its URL, rounds per process, whether the processes must never retry)
CASES: dict[str, tuple[Callable[[], str], int, bool]] = {
    "sqlite": (lambda: f"sqlite:///{_DIR}/increments.db", 500, True),
    "postgresql": (lambda: POSTGRES_URL, 500, True),
    "mariadb": (lambda: MYSQL_URL, 500, True),
    "redis": (lambda: REDIS_URL, 500, True),
    "directory": (lambda: f"file://{_DIR}/files", 50, False),
    "dynamodb": (_dynamodb_url, 10, False),
}


@pytest.mark.parametrize("engine", list(CASES))
def test_processes_increment_one_counter(engine: str) -> None:
    make_url, rounds, never_retries = CASES[engine]
    url = make_url()
    namespace = "inc" + uuid.uuid4().hex[:10]
    db = persisty.connect(url, namespace=namespace)
    try:
        db.store(Tally).create(Tally(id="c"))
        ctx = multiprocessing.get_context("fork")
        start = ctx.Event()
        out = ctx.Queue()
        procs = [
            ctx.Process(target=_worker, args=(url, namespace, rounds, start, out))
            for _ in range(WORKERS)
        ]
        for p in procs:
            p.start()
        start.set()
        retries = [out.get(timeout=300) for _ in procs]
        for p in procs:
            p.join(timeout=60)
            assert p.exitcode == 0
        final = db.store(Tally).read("c")
        assert final is not None and final.hits == WORKERS * rounds
        if never_retries:
            assert retries == [0] * WORKERS
    finally:
        _drop(db)
        db.close()
