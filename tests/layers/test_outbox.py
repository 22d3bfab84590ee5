"""The events layer's SQL outbox: each change is written in the transaction of its write,
cleared once delivered, and delivered by ``deliver_pending()`` after its writer crashed
(a real crash: a child process that dies inside a hook). On SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import MYSQL_URL, POSTGRES_URL

import persisty
import persisty.aio
from persisty import etag
from persisty.backends.sql import OUTBOX_TABLE, AsyncSqlDatabase, SqlDatabase, SqlStore
from persisty.errors import PersistyError, ValidationError
from persisty.layers import Change, observed
from persisty.store import Edit
from persisty.testing.models import Counter


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return {
        "sqlite": f"sqlite:///{tmp_path / 'outbox.db'}",
        "postgresql": POSTGRES_URL,
        "mariadb": MYSQL_URL,
    }[request.param]


@pytest.fixture
def namespace() -> str:
    return "ob" + uuid.uuid4().hex[:10]


@pytest.fixture
def db(url: str, namespace: str) -> Iterator[SqlDatabase]:
    database = persisty.connect(url, namespace=namespace)
    assert isinstance(database, SqlDatabase)
    yield database
    database.drop_tables()
    database.close()


def test_each_change_is_in_the_outbox_until_delivered(db: Any) -> None:
    counters = observed(db.store(Counter), outbox=True)
    during: list[tuple[str, int]] = []
    counters.on_change(lambda ch: during.append((ch.kind, counters.pending_changes())))
    c = counters.create(Counter(id="a", value=1))
    counters.patch("a", {"value": 2}, if_match=etag(c))
    counters.edit_batch([Edit.create(Counter(id=f"b{i}")) for i in range(5)])
    counters.delete("a")
    # the row is there while its hooks run (it was committed with the write) ...
    assert during == [("create", 1), ("update", 1)] + [("create", 5)] * 5 + [("delete", 1)]
    # ... and gone once they have
    assert counters.pending_changes() == 0
    assert counters.deliver_pending() == 0


def test_a_failed_write_leaves_no_change(db: Any) -> None:
    counters = observed(db.store(Counter), outbox=True)
    seen: list[Change] = []
    counters.on_change(seen.append)
    counters.create(Counter(id="a"))
    seen.clear()
    results = counters.edit_batch([Edit.create(Counter(id="x")), Edit.create(Counter(id="a"))])
    assert [r.ok for r in results] == [False, False]
    assert counters.read("x") is None
    results = counters.edit_batch(
        [Edit.patch("a", {"value": 5}), Edit.delete("missing")], atomic=False
    )
    assert [r.ok for r in results] == [True, False]
    assert [(c.kind, c.key, c.new.value) for c in seen] == [("update", "a", 5)]
    assert counters.pending_changes() == 0


def test_a_write_and_its_change_commit_together(db: Any) -> None:
    counters = observed(db.store(Counter), outbox=True)
    counters.create(Counter(id="a"))
    with db.executor.connection() as conn:  # the outbox becomes unwritable behind the store's back
        db.executor.driver.run(conn, f"DROP TABLE {OUTBOX_TABLE}")
    try:
        with pytest.raises(PersistyError):
            counters.create(Counter(id="b"))
        with pytest.raises(PersistyError):
            counters.patch("a", {"value": 9})
        with pytest.raises(PersistyError):
            counters.edit_batch([Edit.create(Counter(id=f"c{i}")) for i in range(3)])
        # no write committed without its change
        assert counters.read_batch(["a", "b", "c0"]) == [Counter(id="a"), None, None]
    finally:
        db.tables.forget([OUTBOX_TABLE])
        db.tables.ensure_outbox()


def test_a_failing_hook_is_recorded_and_its_change_cleared(db: Any) -> None:
    counters = observed(db.store(Counter), outbox=True)

    def broken(change: Change) -> None:
        raise RuntimeError("down")

    counters.on_change(broken)
    counters.create(Counter(id="a"))
    assert counters.failures.total == 1
    assert counters.pending_changes() == 0


_WRITER = textwrap.dedent("""
    import os, sys
    from datetime import timedelta
    import persisty
    from persisty.layers import observed
    from persisty.testing.models import Counter

    db = persisty.connect(sys.argv[1], namespace=sys.argv[2])
    counters = observed(db.store(Counter), outbox=True, outbox_lease=timedelta(seconds=1))

    def crash_on_update(change):
        if change.kind == "update":
            os._exit(3)  # the process dies after the commit, before delivering

    counters.on_change(crash_on_update)
    counters.create(counters.meta.cls(id="c", value=7))
    counters.patch("c", {"value": 8})
""")


def test_a_change_survives_a_crash_between_commit_and_delivery(url: str, namespace: str) -> None:
    writer = subprocess.run(
        [sys.executable, "-c", _WRITER, url, namespace], capture_output=True, text=True, timeout=60
    )
    assert writer.returncode == 3, writer.stderr
    db = persisty.connect(url, namespace=namespace)
    assert isinstance(db, SqlDatabase)
    try:
        counters = observed(db.store(Counter), outbox=True)
        seen: list[Change] = []
        counters.on_change(seen.append)
        committed = counters.read("c")
        assert committed is not None and committed.value == 8  # committed
        assert counters.pending_changes() == 1  # the create was delivered, the update not
        assert counters.deliver_pending() == 0  # the writer's lease still runs
        time.sleep(1.1)
        assert counters.deliver_pending() == 1
        (change,) = seen
        assert (change.kind, change.store, change.key) == ("update", "counter", "c")
        assert (change.old.value, change.new.value) == (7, 8)
        assert counters.pending_changes() == 0
        assert counters.deliver_pending() == 0
    finally:
        db.drop_tables()
        db.close()


def test_concurrent_deliverers_take_each_change_once(url: str, namespace: str) -> None:
    setup = persisty.connect(url, namespace=namespace)
    assert isinstance(setup, SqlDatabase)
    sql_store = setup.store(Counter)
    assert isinstance(sql_store, SqlStore)
    # a writer that never delivers: its changes stay in the outbox with an expired lease
    store, outbox = sql_store.with_outbox(lease=0)
    store.edit_batch([Edit.create(Counter(id=f"k{i:03d}")) for i in range(120)])
    assert outbox.pending() == 120
    seen: list[str] = []
    lock = threading.Lock()

    def deliver() -> None:
        db = persisty.connect(url, namespace=namespace)
        counters = observed(db.store(Counter), outbox=True)

        def record(change: Change) -> None:
            with lock:
                seen.append(change.key)

        counters.on_create(record)
        counters.deliver_pending()
        db.close()

    workers = [threading.Thread(target=deliver) for _ in range(3)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert sorted(seen) == [f"k{i:03d}" for i in range(120)]
    assert outbox.pending() == 0
    setup.drop_tables()
    setup.close()


def test_outbox_needs_a_sql_store_beneath() -> None:
    db = persisty.connect("memory://")
    with pytest.raises(ValidationError) as e:
        observed(db.store(Counter), outbox=True)
    assert e.value.field == "outbox"
    with pytest.raises(ValidationError):
        observed(db.store(Counter)).deliver_pending()


async def test_async_outbox_delivers_and_clears(namespace: str) -> None:
    db = persisty.aio.connect(POSTGRES_URL, namespace=namespace)
    assert isinstance(db, AsyncSqlDatabase)
    try:
        counters = observed(db.store(Counter), outbox=True, outbox_lease=timedelta(seconds=5))
        seen: list[tuple[str, int]] = []

        async def hook(change: Change) -> None:
            seen.append((change.kind, await counters.pending_changes()))

        counters.on_change(hook)
        await counters.create(Counter(id="a"))
        await counters.update_all(None, {"value": 3})
        await counters.delete_all(None)
        assert seen == [("create", 1), ("update", 1), ("delete", 1)]
        assert await counters.pending_changes() == 0
        assert await counters.deliver_pending() == 0
    finally:
        await db.drop_tables()
        await db.close()


def test_outbox_layers_made_per_request_are_not_kept(tmp_path: Path) -> None:
    import gc
    import weakref

    db = persisty.connect(f"sqlite:///{tmp_path / 'many.db'}")
    made: list[weakref.ref[Any]] = []
    for i in range(50):
        counters = observed(db.store(Counter), outbox=True)
        counters.create(Counter(id=f"c{i}"))
        made.append(weakref.ref(counters.inner))
    del counters
    gc.collect()
    assert [ref for ref in made if ref() is not None] == []
    assert db.store(Counter).count() == 50
    db.close()
