"""The Redis database: URLs and options, the page-key secret kept in Redis, namespaces and
prefixes, unreachable servers, pipelined batches, sequences, async twins."""

from __future__ import annotations

import uuid

import pytest
from tests.conftest import REDIS_URL

import persisty
import persisty.aio
from persisty import Attr, F, stored
from persisty.backends.redis import AsyncRedisDatabase, RedisDatabase
from persisty.errors import Unavailable, ValidationError
from persisty.store import Edit
from persisty.testing.models import Item


@stored
class Ticket:
    id: str
    n: int | None = Attr(generated="sequence", default=None)
    title: str = ""


def test_page_key_secret_is_kept_in_redis(db: RedisDatabase) -> None:
    store = db.store(Item)
    store.edit_batch([Edit.create(Item(owner="ann", title=str(i))) for i in range(5)])
    page = store.search(limit=2)
    assert page.next_page_key
    other = persisty.connect(REDIS_URL, namespace=db.namespace)
    try:
        again = other.store(Item).search(limit=2, page_key=page.next_page_key)
        assert len(again.items) == 2
    finally:
        other.close()
    foreign = persisty.connect(REDIS_URL, namespace=db.namespace, secret="another")
    try:
        with pytest.raises(ValidationError):
            foreign.store(Item).search(limit=2, page_key=page.next_page_key)
    finally:
        foreign.close()


def test_unreachable_server_is_unavailable() -> None:
    with pytest.raises(Unavailable):
        persisty.connect("redis://127.0.0.1:1/0")
    db = persisty.connect("redis://127.0.0.1:1/0", secret="s")
    with pytest.raises(Unavailable):
        db.store(Item).read(str(uuid.uuid4()))


def test_prefix_option_and_drop() -> None:
    prefix = "p" + uuid.uuid4().hex[:8]
    db = persisty.connect(f"{REDIS_URL}?prefix={prefix}", namespace="n1")
    assert isinstance(db, RedisDatabase)
    try:
        db.store(Item).create(Item(owner="ann", title="t"))
        keys = list(db.client.scan_iter(match=f"{prefix}:*"))
        assert keys and all(k.startswith(f"{prefix}:".encode()) for k in keys)
        db.drop()
        assert list(db.client.scan_iter(match=f"{prefix}:{{n1:*")) == []
    finally:
        db.client.delete(f"{prefix}:secret")
        db.close()
    with pytest.raises(ValidationError):
        persisty.connect(f"{REDIS_URL}?prefix=a*b")
    with pytest.raises(ValidationError):
        RedisDatabase("http://127.0.0.1:6379")


def test_large_batches_are_chunked(db: RedisDatabase) -> None:
    store = db.store(Item)
    items = [Item(owner=f"o{i % 3}", title=str(i)) for i in range(2500)]
    results = store.edit_batch([Edit.create(i) for i in items], atomic=False)
    assert all(r.ok for r in results)
    keys = [str(i.id) for i in items] + [str(uuid.uuid4())]
    got = store.read_batch(keys)
    assert [g.title if g else None for g in got] == [i.title for i in items] + [None]
    assert store.count() == 2500
    assert store.count(F.owner == "o0") == 834
    assert store.delete_all(F.owner == "o2") == 833


def test_sequences(db: RedisDatabase) -> None:
    store = db.store(Ticket)
    made = [store.create(Ticket(id=f"t{i}")) for i in range(3)]
    assert [t.n for t in made] == [1, 2, 3]
    assert store.search(F.n >= 2).items == made[1:]


async def test_async_database(adb: AsyncRedisDatabase) -> None:
    store = adb.store(Item)
    a = await store.create(Item(owner="ann", title="a"))
    assert await store.read(str(a.id)) == a
    assert (await store.explain(F.owner == "ann")).detail.startswith("redis index")
    assert [i.title for i in (await store.search(F.owner == "ann")).items] == ["a"]
    assert isinstance(persisty.aio.connect(REDIS_URL, secret="x"), AsyncRedisDatabase)
