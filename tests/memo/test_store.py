"""@persisted(store=...): results in a store shared by processes; 8 threads in each of 4
processes run the worker exactly once per key (a lease item in the store), on SQLite,
PostgreSQL, MariaDB, Redis and DynamoDB; a failing worker stores nothing; ttl uses the
store's expiry."""

from __future__ import annotations

import multiprocessing
import threading
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from tests.conformance.test_dynamodb import dynamodb_url
from tests.conftest import MYSQL_URL, POSTGRES_URL, REDIS_URL

import persisty
from persisty.errors import ValidationError
from persisty.memo import persisted
from persisty.stash import AsyncDictionaryStash, DictionaryStash, StoreStash

KEYS = [1, 2, 3, 4, 5]


def _worker_process(url: str, namespace: str, log: str) -> None:
    db = persisty.connect(url, namespace=namespace)

    @persisted(store=db)
    def compute(x: int) -> int:
        with open(log, "a") as f:  # one line per computation, from any process
            f.write(f"{x}\n")
        time.sleep(0.05)
        return x * 10

    barrier = threading.Barrier(8)
    results: list[int] = []

    def run() -> None:
        barrier.wait()
        for x in KEYS:
            results.append(compute(x))

    threads = [threading.Thread(target=run) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == sorted(x * 10 for x in KEYS for _ in range(8))
    db.close()


@pytest.mark.parametrize("url", ["sqlite", POSTGRES_URL, MYSQL_URL, REDIS_URL, "dynamodb"])
def test_once_per_key_across_threads_and_processes(url: str, tmp_path: Path) -> None:
    if url == "sqlite":
        url = f"sqlite:///{tmp_path / 'memo.db'}"
    elif url == "dynamodb":
        url = dynamodb_url()
    namespace = "m" + uuid.uuid4().hex[:10]
    log = tmp_path / "computed"
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_worker_process, args=(url, namespace, str(log))) for _ in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    assert sorted(log.read_text().split()) == [str(x) for x in KEYS]
    db = persisty.connect(url, namespace=namespace)
    try:
        stashes = [StoreStash(db, name) for name in _guess(db)]
        assert sum(len(s) for s in stashes) == len(KEYS)  # the values; leases are gone
    finally:
        for name in ("drop_tables", "drop"):
            if hasattr(db, name):
                getattr(db, name)()
                break
        db.close()


def _guess(db: persisty.Database) -> list[str]:
    from persisty.memo._keys import stash_name

    def compute(x: int) -> int:  # the same qualified name as in the worker processes
        return x

    compute.__qualname__ = "_worker_process.<locals>.compute"
    compute.__module__ = _worker_process.__module__
    return [stash_name(compute)]


def test_failing_worker_stores_nothing_and_ttl_expires(tmp_path: Path) -> None:
    db = persisty.connect(f"sqlite:///{tmp_path / 'm.db'}")
    calls: list[int] = []

    def flaky(x: int) -> int | None:
        calls.append(x)
        if x < 0:
            raise ValueError("negative")
        return None if x == 0 else x

    cached = persisted(store=db, ttl=timedelta(milliseconds=300))(flaky)
    with pytest.raises(ValueError):
        cached(-1)
    values, leases = cached.__persisted__._stashes
    assert len(values) == 0 and len(leases) == 0
    assert cached(0) is None and cached(0) is None and calls == [-1, 0]
    again = persisted(store=db)(flaky)  # another process: the same function, a fresh memory
    assert again(0) is None and calls == [-1, 0]
    assert cached(1) == 1
    time.sleep(0.35)
    assert persisted(store=db)(flaky)(1) == 1 and calls == [-1, 0, 1, 1]  # the entry expired
    cached.cache_clear()  # memory and store
    assert len(values) == 0
    db.close()


def test_store_may_be_a_stash() -> None:
    stash = DictionaryStash()
    calls: list[str] = []

    def shout(word: str) -> str:
        calls.append(word)
        return word.upper()

    assert persisted(store=stash)(shout)("a") == "A"
    assert persisted(store=stash)(shout)("a") == "A" and calls == ["a"]

    def other(word: str) -> str:
        return "other"

    assert persisted(store=stash)(other)("a") == "other"  # functions never share entries
    assert len(stash) == 2


async def test_async_def_with_an_async_store() -> None:
    import asyncio

    stash = AsyncDictionaryStash()
    calls: list[int] = []

    @persisted(store=stash)
    async def slow(x: int) -> int:
        calls.append(x)
        await asyncio.sleep(0.01)
        return x + 1

    assert await asyncio.gather(*(slow(1) for _ in range(5))) == [2] * 5
    assert calls == [1] and await stash.count() == 1

    @persisted(store=DictionaryStash())
    async def wrong(x: int) -> int:
        return x

    with pytest.raises(ValidationError):
        await wrong(1)
