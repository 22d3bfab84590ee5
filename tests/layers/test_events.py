"""The change-events layer: after-commit hooks with old and new items, failing hooks, listen()
subscriptions (async and sync), batches, bulk updates; on memory and SQLite."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import threading
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import persisty
import persisty.aio
from persisty import F, etag
from persisty.errors import NotFound, PreconditionFailed, ValidationError
from persisty.layers import Change, KeyRing, encrypted, observed
from persisty.store import AsyncDatabase, Edit
from persisty.testing.models import Counter, Item

URLS = ["memory://", "sqlite://"]


@pytest.fixture(params=URLS)
def db(request: pytest.FixtureRequest) -> Any:
    return persisty.connect(request.param)


@pytest.fixture(params=URLS)
def adb(request: pytest.FixtureRequest) -> Any:
    return persisty.aio.connect(request.param)


def test_hooks_get_old_and_new(db: Any) -> None:
    counters = observed(db.store(Counter))
    seen: list[Change] = []
    counters.on_create(seen.append)
    counters.on_update(seen.append)
    counters.on_delete(seen.append)
    c = counters.create(Counter(id="c", value=1))
    u = counters.update(dataclasses.replace(c, value=2))
    p = counters.patch("c", {"value": 3}, if_match=etag(u))
    counters.delete("c")
    assert [(ch.kind, ch.key) for ch in seen] == [
        ("create", "c"),
        ("update", "c"),
        ("update", "c"),
        ("delete", "c"),
    ]
    assert (seen[0].old, seen[0].new) == (None, c)
    assert (seen[1].old, seen[1].new) == (c, u)
    assert (seen[2].old, seen[2].new) == (u, p)
    assert (seen[3].old, seen[3].new) == (p, None)
    assert seen[3].item == p and seen[0].store == "counter"


def test_failed_writes_emit_nothing(db: Any) -> None:
    counters = observed(db.store(Counter))
    seen: list[Change] = []
    counters.on_change(seen.append)
    c = counters.create(Counter(id="c"))
    with pytest.raises(PreconditionFailed):
        counters.patch("c", {"value": 5}, if_match="stale")
    with pytest.raises(PreconditionFailed):
        counters.delete("c", precondition=F.value == 9)
    with pytest.raises(NotFound):
        counters.patch("nope", {"value": 1})
    with pytest.raises(ValidationError):
        counters.patch("c", {"value": "x"})
    with pytest.raises(persisty.Conflict):
        counters.create(Counter(id="c"))
    assert [ch.kind for ch in seen] == ["create"]
    assert counters.read("c") == c


def test_failing_hook_is_reported_and_never_undoes_the_write(
    db: Any, caplog: pytest.LogCaptureFixture
) -> None:
    counters = observed(db.store(Counter))
    after: list[str] = []

    def broken(change: Change) -> None:
        raise RuntimeError("boom")

    counters.on_change(broken)
    counters.on_change(lambda ch: after.append(ch.kind))
    with caplog.at_level(logging.ERROR, logger="persisty.events"):
        c = counters.create(Counter(id="c"))
        counters.patch("c", {"value": 1})
    assert counters.read("c").value == 1 and c.value == 0
    assert after == ["create", "update"]  # later hooks still ran
    failures = list(counters.failures)
    assert [f.change.kind for f in failures] == ["create", "update"]
    assert isinstance(failures[0].error, RuntimeError) and failures[0].hook is broken
    assert counters.failures.total == 2
    assert "boom" in caplog.text and "broken" in caplog.text
    counters.remove_hook(broken)
    counters.delete("c")
    assert counters.failures.total == 2 and after[-1] == "delete"


def test_batches_and_bulk_changes(db: Any) -> None:
    items = observed(db.store(Item))
    seen: list[Change] = []
    items.on_change(seen.append)
    a = items.create(Item(owner="ann", title="a"))
    b = items.create(Item(owner="bob", title="b"))
    new = Item(owner="cy", title="c")
    seen.clear()
    results = items.edit_batch(
        [
            Edit.create(new),
            Edit.patch(str(a.id), {"priority": 1}),
            Edit.patch(str(a.id), {"priority": 2}),
            Edit.delete(str(new.id)),
            Edit.delete(str(b.id), if_match="stale"),
        ]
    )
    assert not any(r.ok for r in results) and seen == []  # atomic: nothing, no events
    results = items.edit_batch(
        [
            Edit.create(new),
            Edit.patch(str(a.id), {"priority": 1}),
            Edit.patch(str(a.id), {"priority": 2}),
            Edit.delete(str(new.id)),
        ]
    )
    assert all(r.ok for r in results)
    assert [(c.kind, c.key) for c in seen] == [
        ("create", str(new.id)),
        ("update", str(a.id)),
        ("update", str(a.id)),
        ("delete", str(new.id)),
    ]
    assert seen[1].old == a and seen[1].new.priority == 1
    assert seen[2].old == seen[1].new and seen[2].new.priority == 2
    assert seen[3].old == seen[0].new
    seen.clear()
    results = items.edit_batch(
        [Edit.patch(str(b.id), {"priority": 5}), Edit.delete(str(a.id), if_match="stale")],
        atomic=False,
    )
    assert [r.ok for r in results] == [True, False]
    assert [(c.kind, c.old.priority, c.new.priority) for c in seen] == [("update", 0, 5)]
    seen.clear()
    assert items.update_all(F.priority >= 0, {"body": "bulk"}) == 2
    assert sorted((c.kind, c.new.body) for c in seen) == [("update", "bulk")] * 2
    seen.clear()
    assert items.delete_all(F.body == "bulk") == 2
    assert sorted(c.kind for c in seen) == ["delete", "delete"]
    assert {c.old.title for c in seen} == {"a", "b"}


async def test_listen_async(adb: Any) -> None:
    counters = observed(adb.store(Counter))
    got: list[Change] = []

    async def consume(sub: Any) -> None:
        async for change in sub:
            got.append(change)

    async with counters.listen() as sub, counters.listen(["delete"]) as deletes:
        task = asyncio.create_task(consume(sub))
        await counters.create(Counter(id="a"))
        await counters.patch("a", {"value": 1})
        await counters.delete("a")
        await asyncio.sleep(0.01)
        sub.close()
        await asyncio.wait_for(task, 5)
        only = await deletes.get(timeout=1)
        assert only is not None and only.kind == "delete" and only.old.value == 1
        assert await deletes.get(timeout=0.01) is None
    assert [c.kind for c in got] == ["create", "update", "delete"]
    assert await sub.get() is None  # closed
    with pytest.raises(ValidationError):
        counters.listen(["upsert"])


async def test_async_hooks_are_awaited(adb: AsyncDatabase) -> None:
    counters = observed(adb.store(Counter))
    log: list[str] = []

    @counters.on_create
    async def slow(change: Change) -> None:
        await asyncio.sleep(0)
        log.append(change.key)

    await counters.create(Counter(id="x"))
    assert log == ["x"]


def test_sync_listen_from_a_thread(db: Any) -> None:
    counters = observed(db.store(Counter))
    got: list[str] = []
    sub = counters.listen(maxsize=100)
    reader = threading.Thread(target=lambda: got.extend(c.key for c in sub))
    reader.start()
    for i in range(20):
        counters.create(Counter(id=f"c{i}"))
    sub.close()
    reader.join(5)
    assert got == [f"c{i}" for i in range(20)]


def test_slow_subscriber_drops_oldest(db: Any) -> None:
    counters = observed(db.store(Counter))
    with counters.listen(maxsize=3) as sub:
        for i in range(5):
            counters.create(Counter(id=f"c{i}"))
        assert sub.dropped == 2
        assert [sub.get(0).key for _ in range(3)] == ["c2", "c3", "c4"]


def test_async_hook_on_sync_store_is_a_reported_failure(db: Any) -> None:
    counters = observed(db.store(Counter))

    async def hook(change: Change) -> None:  # pragma: no cover - never awaited
        pass

    counters.on_create(hook)
    counters.create(Counter(id="c"))
    assert isinstance(next(iter(counters.failures)).error, TypeError)
    assert counters.read("c") is not None


def test_events_over_encryption_see_plaintext(db: Any) -> None:
    keys = KeyRing({"k": KeyRing.new_key()})
    items = observed(encrypted(db.store(Item), ["=code", "body"], keys))
    seen: list[Change] = []
    items.on_change(seen.append)
    i = items.create(Item(owner="ann", title="t", body="secret", code="c1"))
    items.patch(str(i.id), {"body": "more"}, precondition=F.code == "c1")
    assert [c.new.body for c in seen] == ["secret", "more"] and seen[1].old.body == "secret"


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    ops=st.lists(
        st.tuples(
            st.sampled_from(["create", "patch", "update", "delete", "batch"]),
            st.integers(0, 4),
            st.integers(-5, 5),
        ),
        max_size=30,
    )
)
def test_changes_replay_to_the_stored_state(ops: list[tuple[str, int, int]]) -> None:
    """Applying the reported changes to an empty replica reproduces the store exactly."""
    db = persisty.connect("memory://")
    counters = observed(db.store(Counter))
    replica: dict[str, Counter] = {}

    def apply(change: Change) -> None:
        if change.kind == "create":
            assert change.key not in replica
        else:
            assert replica[change.key] == change.old  # the old item is exactly the last one
        if change.new is None:
            del replica[change.key]
        else:
            replica[change.key] = change.new

    counters.on_change(apply)
    for op, n, v in ops:
        key = f"c{n}"
        try:
            if op == "create":
                counters.create(Counter(id=key, value=v))
            elif op == "patch":
                counters.patch(key, {"value": v})
            elif op == "update":
                counters.update(Counter(id=key, value=v))
            elif op == "delete":
                counters.delete(key)
            else:
                counters.edit_batch(
                    [
                        Edit.patch(key, {"value": v}),
                        Edit.delete(f"c{v % 5}"),
                        Edit.create(Counter(id=f"c{(n + 1) % 5}")),
                    ],
                    atomic=v % 2 == 0,
                )
        except persisty.PersistyError:
            pass
    assert not list(counters.failures)
    assert replica == {c.id: c for c in counters.search(limit=100).items}
