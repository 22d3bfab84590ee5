"""Per-store TTL on Redis: native expiry of the item, and index entries cleaned up so an
expired item never shows in a search or a count."""

from __future__ import annotations

import time
from datetime import datetime, timedelta

import pytest

from persisty import Attr, F, Index, stored
from persisty.backends.redis import AsyncRedisDatabase, RedisDatabase
from persisty.store import Edit

TTL = timedelta(milliseconds=600)


@stored(ttl=TTL, indexes=[Index("owner"), Index("code", unique=True)])
class Session:
    id: str
    owner: str
    code: str | None = None
    expires_at: datetime | None = Attr(expires=True, default=None)


def _index_sizes(db: RedisDatabase) -> dict[bytes, int]:
    pattern = f"persisty:{{{db.namespace}:session}}:x:*".encode()
    return {k: int(db.client.zcard(k)) for k in db.client.scan_iter(match=pattern)}


def test_items_expire_natively_and_leave_no_index_entries(db: RedisDatabase) -> None:
    store = db.store(Session)
    store.edit_batch(
        [Edit.create(Session(id=f"s{i}", owner="ann", code=f"c{i}")) for i in range(5)]
    )
    store.create(Session(id="b", owner="bob"))
    ttl_ms = db.client.pttl(f"persisty:{{{db.namespace}:session}}:i:s1")
    assert 0 < ttl_ms <= 600
    assert store.count(F.owner == "ann") == 5
    assert len(store.search(F.owner == "ann").items) == 5
    time.sleep(0.3)
    store.update(Session(id="b", owner="bob"))  # a write restarts the item's TTL
    time.sleep(0.45)
    assert store.read("s1") is None
    assert store.read_batch(["s1", "s2"]) == [None, None]
    assert store.count(F.owner == "ann") == 0
    assert store.search(F.owner == "ann").items == []
    assert store.count() == 1
    assert [s.id for s in store.search().items] == ["b"]
    sizes = _index_sizes(db)
    assert all(n <= 1 for n in sizes.values()), sizes
    # the unique values of expired items are free again, and their keys can be created anew
    store.create(Session(id="s1", owner="carl", code="c1"))
    assert store.count(F.code == "c1") == 1
    time.sleep(0.7)
    assert store.count() == 0
    assert all(n == 0 for n in _index_sizes(db).values())


def test_expired_item_cannot_be_updated(db: RedisDatabase) -> None:
    from persisty.errors import NotFound

    store = db.store(Session)
    store.create(Session(id="x", owner="ann"))
    time.sleep(0.7)
    with pytest.raises(NotFound):
        store.update(Session(id="x", owner="bob"))
    with pytest.raises(NotFound):
        store.delete("x")


async def test_ttl_async(adb: AsyncRedisDatabase) -> None:
    import asyncio

    store = adb.store(Session)
    await store.create(Session(id="a", owner="ann"))
    assert await store.count(F.owner == "ann") == 1
    await asyncio.sleep(0.7)
    assert await store.count(F.owner == "ann") == 0
    assert (await store.search()).items == []
    assert await store.read("a") is None


def test_redis_expires_each_item_at_its_own_instant(db: RedisDatabase) -> None:
    from datetime import UTC

    store = db.store(Session)
    until = datetime.now(UTC) + timedelta(days=2)
    store.create(Session(id="long", owner="ann", expires_at=until))
    store.create(Session(id="short", owner="ann"))
    prefix = f"persisty:{{{db.namespace}:session}}:i:"
    assert abs(db.client.pexpiretime(prefix + "long") - until.timestamp() * 1000) < 2
    assert 0 < db.client.pttl(prefix + "short") <= 600
