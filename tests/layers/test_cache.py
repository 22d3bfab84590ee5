"""The cache layer: hits and misses, invalidation by every write, TTL, size bound, Redis
shared between stores, stampede protection with threads (sync) and asyncio tasks."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from tests.conftest import REDIS_URL

import persisty
import persisty.aio
from persisty.errors import NotFound, ValidationError
from persisty.layers import AsyncCachedStore, CachedStore, cached
from persisty.layers._primitives import LRU, AsyncFlights, Flights
from persisty.query import F
from persisty.store import AsyncWrappedStore, Edit, Store, WrappedStore
from persisty.testing.models import Item, Numbered


class CountingStore(WrappedStore[Any]):
    """Counts the reads that reach the store under the cache; can be slowed down."""

    def __init__(self, inner: Store[Any], delay: float = 0.0) -> None:
        super().__init__(inner)
        self.reads = 0
        self.delay = delay
        self.lock = threading.Lock()

    def _hit(self) -> None:
        with self.lock:
            self.reads += 1
        if self.delay:
            time.sleep(self.delay)

    def read(self, key: str) -> Any:
        self._hit()
        return self.inner.read(key)

    def read_batch(self, keys: Any) -> Any:
        self._hit()
        return self.inner.read_batch(keys)

    def search(self, *a: Any, **kw: Any) -> Any:
        self._hit()
        return self.inner.search(*a, **kw)

    def count(self, *a: Any, **kw: Any) -> Any:
        self._hit()
        return self.inner.count(*a, **kw)


@pytest.fixture(params=["memory", "redis"])
def setup(request: pytest.FixtureRequest) -> Iterator[tuple[CachedStore[Item], CountingStore]]:
    db = persisty.connect("memory://")
    raw = CountingStore(db.store(Item))
    if request.param == "redis":
        store = cached(raw, cache=REDIS_URL, prefix=f"persisty:test:{uuid.uuid4().hex}:")
    else:
        store = cached(raw, max_items=100)
    assert isinstance(store, CachedStore)
    yield store, raw
    store.close()


def test_read_through_and_counters(setup: tuple[CachedStore[Item], CountingStore]) -> None:
    store, raw = setup
    a = store.create(Item(owner="ann", title="a"))
    key = store.key_of(a)
    assert store.read(key) == a
    assert store.read(key) == a
    assert store.read(key.upper()) == a  # another spelling of the same key: same entry
    assert raw.reads == 1
    assert (store.stats.hits, store.stats.misses, store.stats.loads) == (2, 1, 1)
    missing = str(uuid.uuid4())
    assert store.read(missing) is None and store.read(missing) is None
    assert raw.reads == 2  # absence is cached too
    assert 0 < store.stats.hit_ratio < 1


def test_search_count_and_batch_cached(setup: tuple[CachedStore[Item], CountingStore]) -> None:
    store, raw = setup
    made = [
        store.create(Item(owner=o, title=t, priority=p))
        for o, t, p in [("ann", "x", 1), ("bob", "y", 2), ("ann", "z", 3)]
    ]
    first = store.search(F.owner == "ann", order=[-F.priority], limit=1)
    again = store.search(F.owner == "ann", order=[-F.priority], limit=1)
    assert first == again and first.items[0].title == "z" and first.next_page_key
    second = store.search(
        F.owner == "ann", order=[-F.priority], limit=1, page_key=first.next_page_key
    )
    assert second.items[0].title == "x"
    assert store.count(F.owner == "ann") == store.count(F.owner == "ann") == 2
    assert store.count(F.priority >= "2") == store.count(F.priority >= 2) == 2
    keys = [store.key_of(i) for i in made]
    assert store.read_batch([keys[0], keys[1]]) == made[:2]
    before = raw.reads
    assert store.read_batch([keys[1], keys[0], keys[1]]) == [made[1], made[0], made[1]]
    assert raw.reads == before  # all three from the cache
    assert raw.reads == 5  # 2 searches, 2 counts (a coerced filter is the same query), 1 batch
    with pytest.raises(ValidationError):
        store.search(F.nope == 1)
    with pytest.raises(ValidationError):
        store.read("not-a-uuid")


def test_every_write_invalidates(setup: tuple[CachedStore[Item], CountingStore]) -> None:
    store, _ = setup
    a = store.create(Item(owner="ann", title="a"))
    key = store.key_of(a)

    def warm() -> None:
        store.read(key)
        store.count(F.owner == "ann")
        store.search(F.owner == "ann")
        store.read_batch([key])

    def check(title: str | None, n: int) -> None:
        got = store.read(key)
        assert (got.title if got else None) == title
        assert store.count(F.owner == "ann") == n
        assert [i.title for i in store.search(F.owner == "ann").items] == ([title] if title else [])
        batch = store.read_batch([key])[0]
        assert (batch.title if batch else None) == title

    warm()
    current = store.read(key)
    assert current is not None
    store.update(
        current.__class__(
            **{
                **store.meta.to_builtins(a),
                "title": "u",
                "id": a.id,
                "created_at": a.created_at,
                "updated_at": a.updated_at,
            }
        )
    )
    check("u", 1)
    store.patch(key, {"title": "p"})
    check("p", 1)
    store.edit_batch([Edit.patch(key, {"title": "b"})])
    check("b", 1)
    store.update_all(F.owner == "ann", {"title": "all"})
    check("all", 1)
    store.delete_all(F.title == "all")
    check(None, 0)
    b = store.create(Item(id=a.id, owner="ann", title="again"))  # a cached absence is dropped
    check("again", 1)
    store.delete(key)
    check(None, 0)
    store.edit_batch([Edit.create(b)])
    check("again", 1)
    with pytest.raises(NotFound):
        store.patch(str(uuid.uuid4()), {"title": "x"})  # failing writes are harmless


def test_outside_writes_seen_after_ttl() -> None:
    db = persisty.connect("memory://")
    raw = db.store(Item)
    store = cached(raw, ttl=timedelta(milliseconds=200))
    a = store.create(Item(owner="ann", title="a"))
    key = store.key_of(a)
    assert store.read(key).title == "a"  # type: ignore[union-attr]
    assert store.count() == 1
    raw.patch(key, {"title": "elsewhere"})
    raw.create(Item(owner="bob", title="b"))
    assert store.read(key).title == "a"  # type: ignore[union-attr]  # stale within the ttl
    assert store.count() == 1
    time.sleep(0.25)
    assert store.read(key).title == "elsewhere"  # type: ignore[union-attr]
    assert store.count() == 2


def test_redis_cache_shared_between_processes() -> None:
    """Two cached stores on the same Redis prefix stand for two processes."""
    db = persisty.connect("memory://")
    raw = CountingStore(db.store(Item))
    prefix = f"persisty:test:{uuid.uuid4().hex}:"
    one = cached(raw, cache=REDIS_URL, prefix=prefix)
    two = cached(raw, cache=REDIS_URL, prefix=prefix)
    assert isinstance(one, CachedStore) and isinstance(two, CachedStore)
    try:
        a = one.create(Item(owner="ann", title="a"))
        key = one.key_of(a)
        assert one.read(key) == a
        assert two.read(key) == a
        assert raw.reads == 1  # the second "process" was answered by the shared cache
        assert two.count() == 1
        two.patch(key, {"title": "changed"})  # a write in one invalidates for both
        assert one.read(key).title == "changed"  # type: ignore[union-attr]
        one.create(Item(owner="bob", title="b"))
        assert two.count() == 2
    finally:
        one.close()
        two.close()


def test_lru_bound_and_ttl() -> None:
    lru: LRU[int] = LRU(3, None)
    for i in range(5):
        lru.set(i, i)
    assert len(lru) == 3 and lru.get(0) is None and lru.get(4) == 4
    lru.get(2)
    lru.set(5, 5)  # 3 was least recently used
    assert lru.get(3) is None and lru.get(2) == 2
    short: LRU[int] = LRU(10, 0.05)
    short.set("k", 1)
    assert short.get("k") == 1
    time.sleep(0.06)
    assert short.get("k") is None
    db = persisty.connect("memory://")
    store = cached(db.store(Numbered), max_items=10)
    for i in range(50):
        store.create(Numbered(id=i, name=str(i)))
        store.read(str(i))
    assert len(store.cache.items) <= 10  # type: ignore[attr-defined]


@pytest.mark.parametrize("copies", [True, False])
def test_copies(copies: bool) -> None:
    store = cached(persisty.connect("memory://").store(Item), copies=copies)
    a = store.create(Item(owner="ann", title="a"))
    key = store.key_of(a)
    got = store.read(key)
    assert got == a
    assert (store.read(key) is got) is not copies  # shared unless copies were asked for
    page = store.search()
    page.items.clear()  # the list is always the caller's own
    assert store.search().items == [a]


def test_bad_options() -> None:
    db = persisty.connect("memory://")
    with pytest.raises(ValidationError) as e:
        cached(db.store(Item), max_items=0)
    assert e.value.field == "max_items"
    with pytest.raises(ValidationError) as e:
        cached(db.store(Item), ttl=timedelta(0))
    assert e.value.field == "ttl"
    with pytest.raises(ValidationError) as e:
        cached(db.store(Item), cache="memcached://x")
    assert e.value.field == "cache"
    with pytest.raises(ValidationError) as e:
        cached(db.store(Item), cache=REDIS_URL, ttl=None)
    assert e.value.field == "ttl"
    with pytest.raises(TypeError, match="cached"):
        cached("not a store")  # type: ignore[call-overload]


@pytest.mark.parametrize("backend", ["memory", "redis"])
def test_stampede_threads(backend: str) -> None:
    db = persisty.connect("memory://")
    raw = CountingStore(db.store(Item), delay=0.2)
    store = cached(
        raw,
        cache=REDIS_URL if backend == "redis" else None,
        prefix=f"persisty:test:{uuid.uuid4().hex}:",
    )
    assert isinstance(store, CachedStore)
    a = raw.inner.create(Item(owner="ann", title="a"))
    key = store.key_of(a)
    barrier = threading.Barrier(16)

    def worker(kind: str) -> Any:
        barrier.wait()
        return store.read(key) if kind == "read" else store.count(F.owner == "ann")

    try:
        for kind, want in (("read", a), ("count", 1)):
            raw.reads = 0
            threads_out: list[Any] = []
            threads = [
                threading.Thread(target=lambda k=kind, o=threads_out: o.append(worker(k)))
                for _ in range(16)
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert threads_out == [want] * 16
            assert raw.reads == 1, kind
    finally:
        store.close()


class SlowAsync(AsyncWrappedStore[Any]):
    def __init__(self, inner: Any) -> None:
        super().__init__(inner)
        self.reads = 0

    async def read(self, key: str) -> Any:
        self.reads += 1
        found = await self.inner.read(key)  # read first, then take long to answer
        await asyncio.sleep(0.05)
        return found

    async def search(self, *a: Any, **kw: Any) -> Any:
        self.reads += 1
        await asyncio.sleep(0.05)
        return await self.inner.search(*a, **kw)

    async def read_batch(self, keys: Any) -> Any:
        self.reads += 1
        await asyncio.sleep(0.05)
        return await self.inner.read_batch(keys)


@pytest.mark.parametrize("backend", ["memory", "redis"])
async def test_stampede_tasks(backend: str) -> None:
    db = persisty.aio.connect("memory://")
    raw = SlowAsync(db.store(Item))
    store = cached(
        raw,
        cache=REDIS_URL if backend == "redis" else None,
        prefix=f"persisty:test:{uuid.uuid4().hex}:",
    )
    assert isinstance(store, AsyncCachedStore)
    try:
        a = await store.create(Item(owner="ann", title="a"))
        key = store.key_of(a)
        got = await asyncio.gather(*(store.read(key) for _ in range(50)))
        assert got == [a] * 50 and raw.reads == 1
        pages = await asyncio.gather(*(store.search(F.owner == "ann") for _ in range(50)))
        assert all(p.items == [a] for p in pages) and raw.reads == 2
        batches = await asyncio.gather(*(store.read_batch([key, key]) for _ in range(20)))
        assert batches == [[a, a]] * 20
        assert store.stats.loads == 2  # the batch came from the cached item
    finally:
        await store.close()


async def test_write_during_miss_is_not_cached() -> None:
    """A read that started before a write and ends after it must not fill the cache."""
    db = persisty.aio.connect("memory://")
    raw = SlowAsync(db.store(Item))
    store = cached(raw)
    a = await store.create(Item(owner="ann", title="old"))
    key = store.key_of(a)
    slow = asyncio.create_task(store.read(key))
    await asyncio.sleep(0.01)  # the slow read has fetched "old" and waits
    await raw.inner.patch(key, {"title": "new"})
    await store.patch(key, {"priority": 1})  # a write through the layer meanwhile
    started = await slow
    assert started is not None and started.title == "old"  # it started before the write
    assert (await store.read(key)).title == "new"  # type: ignore[union-attr]


async def test_flights_share_errors_and_survive_cancel() -> None:
    flights = AsyncFlights()
    calls = 0

    async def boom() -> int:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.01)
        raise RuntimeError("x")

    results = await asyncio.gather(
        *(flights.run("k", boom) for _ in range(5)), return_exceptions=True
    )
    assert calls == 1 and all(isinstance(r, RuntimeError) for r in results)

    async def slow() -> int:
        await asyncio.sleep(0.05)
        return 7

    leader = asyncio.create_task(flights.run("j", slow))
    await asyncio.sleep(0)
    follower = asyncio.create_task(flights.run("j", slow))
    await asyncio.sleep(0.01)
    leader.cancel()
    assert await follower == 7  # the follower retried on its own


def test_sync_flights_share_one_call() -> None:
    flights = Flights()
    calls = 0
    barrier = threading.Barrier(8)

    def fn() -> int:
        nonlocal calls
        calls += 1
        time.sleep(0.1)
        return 3

    out: list[int] = []

    def worker() -> None:
        barrier.wait()
        out.append(flights.run("k", fn))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert out == [3] * 8 and calls == 1 and flights.shared == 7
