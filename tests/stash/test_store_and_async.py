"""StoreStash.of over layers (encrypted over cached), StoreStash's ttl and sequences, and
the async stackable stashes."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from typing import Any

import pytest

import persisty
import persisty.aio
from persisty import stored
from persisty.errors import Forbidden, ValidationError
from persisty.layers import KeyRing, cached, encrypted
from persisty.stash import (
    AsyncCacheStash,
    AsyncDictionaryStash,
    AsyncFactoryStash,
    AsyncIncrementKeyStash,
    AsyncLRUCacheStash,
    AsyncMultiProcessStash,
    AsyncOneShotFactoryStash,
    AsyncReadOnlyStash,
    AsyncStoreStash,
    AsyncUnionStash,
    StoreStash,
)


@stored
class Secret:
    id: str
    owner: str
    body: str


def test_store_stash_of_layers_composes() -> None:
    db = persisty.connect("memory://")
    raw = db.store(Secret)
    stash = StoreStash.of(
        encrypted(
            cached(raw), fields=["body"], keys=KeyRing({"k1": KeyRing.new_key()}, current="k1")
        )
    )
    stash.dump("s1", Secret(id="s1", owner="ann", body="the plan"))
    assert stash["s1"].body == "the plan" and len(stash) == 1 and "s1" in stash
    found = raw.read("s1")
    assert found is not None and found.body != "the plan"  # encrypted underneath
    assert list(stash.keys()) == ["s1"] and dict(stash)["s1"].owner == "ann"
    with pytest.raises(ValidationError):
        stash.dump("other", Secret(id="s1", owner="ann", body="x"))  # key mismatch
    with pytest.raises(ValidationError):
        stash.dump("s2", {"not": "an item"})
    stash.delete("s1")
    stash.delete("s1")
    assert len(stash) == 0


def test_store_stash_ttl_and_bad_names() -> None:
    stash = StoreStash("memory://", "short", ttl=timedelta(milliseconds=200))
    stash.dump("a", 1)
    assert stash.get("a") == 1 and len(stash) == 1
    time.sleep(0.25)
    assert stash.get("a") is None and not stash.exists("a") and len(stash) == 0
    assert stash.add("a", 2) and stash.get("a") == 2  # an expired key is free again
    for name in ("", "1abc", "a-b", "x" * 41, "drop table"):
        with pytest.raises(ValidationError):
            StoreStash("memory://", name)
    with pytest.raises(ValidationError):
        stash.dump(3.5, 1)  # keys are strings (integers become their text)
    stash.dump(7, "seven")
    assert stash.get("7") == "seven"


async def test_async_stacks() -> None:
    base = AsyncStoreStash(persisty.aio.connect("memory://"), "a")
    cache = AsyncCacheStash(base)
    await cache.dump("x", None)
    assert await cache.get("x", 1) is None and await cache.exists("x")
    with pytest.raises(TypeError):
        len(cache)
    with pytest.raises(TypeError):
        "x" in cache  # noqa: B015

    class Squares(AsyncReadOnlyStash):
        async def load(self, key: Any) -> Any:
            return int(key) ** 2

        async def keys(self, prefix: Any = None) -> Any:
            return [str(i) for i in range(4)]

    factory = AsyncFactoryStash(AsyncDictionaryStash(), Squares())
    assert await factory["3"] == 9 and await factory.count() == 1
    with pytest.raises(Forbidden):
        await Squares().dump("1", 1)

    async def fill() -> Any:
        for i in range(3):
            yield str(i), i

    one = AsyncOneShotFactoryStash(AsyncDictionaryStash(), fill)
    assert await one.get("2") == 2 and await one.count() == 3 and await one.has_data()
    assert sorted([k async for k, _ in one]) == ["0", "1", "2"]

    lru = AsyncLRUCacheStash(2)
    for k in "abc":
        await lru.dump(k, k)
    assert list(lru.data) == ["b", "c"]

    union = AsyncUnionStash([AsyncDictionaryStash({"a": 1}), AsyncDictionaryStash({"a": 2})])
    assert await union["a"] == 1 and list(await union.keys()) == ["a"]

    inc = AsyncIncrementKeyStash(base)
    keys = await asyncio.gather(*(inc.dump(i) for i in range(10)))
    assert len(set(keys)) == 10
    await base.close()


async def test_async_multi_process_populate() -> None:
    stash = AsyncMultiProcessStash(AsyncDictionaryStash({"1": -1}))
    keys = [str(i) for i in range(1, 8)]
    assert await stash.populate(int, keys, workers=2, chunk_size=2) == 6  # "1" was there
    assert await stash.get("7") == 7 and await stash.get("1") == -1
    assert await stash.populate(int, keys) == 0


def test_counted_is_refused_on_redis() -> None:
    from tests.conftest import REDIS_URL

    import persisty

    with persisty.connect(REDIS_URL) as db, pytest.raises(ValidationError) as e:
        StoreStash(db, "counted", counted=True)
    assert e.value.field == "counted"
