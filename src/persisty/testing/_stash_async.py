"""The stash conformance suite (async): the Stash contract as tests, run on every backing
stash and on ``StoreStash`` over every engine.

The sync twin ``_stash_sync.py`` is generated from this file by ``scripts/generate_sync.py``;
edit this file, never the twin.

Subclass it and say how to open an empty stash::

    class TestMine(AsyncStashConformance):
        async def open_stash(self):
            return AsyncStoreStash(persisty.aio.connect("mine://…"), "t" + uuid4().hex[:8])
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from persisty.stash import AsyncStash
from persisty.testing._concurrency import run_concurrently_async

VALUES: list[Any] = [
    None,
    0,
    -7,
    2**53,
    1.5,
    True,
    False,
    "",
    "text",
    "ünïcødé ✓ 🎉",
    [],
    [1, "a", None],
    {},
    {"a": {"b": [1, 2, {"c": None}]}, "ü": "x"},
]
KEYS = ["a", "key with spaces", "ünï/cødé", "a:b~c", "x" * 150, "../up", "%2F", "UPPER"]


class AsyncStashConformance:
    """The Stash contract. Subclasses implement :meth:`open_stash` (an empty stash,
    isolated from other tests) and may override :meth:`close_stash`."""

    concurrency_workers = 8
    many_keys = 700  # more than one page of StoreStash.keys()

    async def open_stash(self) -> AsyncStash:
        """An empty stash on the backing under test."""
        raise NotImplementedError

    async def close_stash(self, stash: AsyncStash) -> None:
        """Remove what a test stored and release the stash."""
        await stash.clear()
        await stash.close()

    @pytest.fixture
    async def stash(self) -> AsyncIterator[AsyncStash]:
        stash = await self.open_stash()
        try:
            yield stash
        finally:
            await self.close_stash(stash)

    # ---- values --------------------------------------------------------------------------

    async def test_dump_and_get_every_value(self, stash: AsyncStash) -> None:
        for i, value in enumerate(VALUES):
            await stash.dump(f"k{i}", value)
        for i, value in enumerate(VALUES):
            assert await stash.get(f"k{i}", "default") == value
            assert await stash.exists(f"k{i}")
            assert await stash[f"k{i}"] == value
        assert await stash.count() == len(VALUES)

    async def test_none_is_a_value(self, stash: AsyncStash) -> None:
        await stash.dump("n", None)
        assert await stash.exists("n")
        assert await stash.get("n", "default") is None
        assert await stash.load("n") is None
        assert await stash["n"] is None
        assert [k async for k, _ in stash.items()] == ["n"]

    async def test_missing(self, stash: AsyncStash) -> None:
        assert await stash.load("nope") is None
        assert await stash.get("nope") is None
        assert await stash.get("nope", "d") == "d"
        assert not await stash.exists("nope")
        with pytest.raises(KeyError):
            await stash["nope"]
        assert await stash.count() == 0
        assert list(await stash.keys()) == []

    async def test_overwrite(self, stash: AsyncStash) -> None:
        await stash.dump("a", 1)
        await stash.dump("a", {"two": 2})
        assert await stash.get("a") == {"two": 2}
        assert await stash.count() == 1

    async def test_large_value(self, stash: AsyncStash) -> None:
        value = {"rows": ["x" * 100] * 500}
        await stash.dump("big", value)
        assert await stash.get("big") == value

    # ---- keys ----------------------------------------------------------------------------

    async def test_keys_of_every_shape(self, stash: AsyncStash) -> None:
        for key in KEYS:
            await stash.dump(key, key)
        assert sorted(await stash.keys()) == sorted(KEYS)
        for key in KEYS:
            assert await stash.get(key) == key
            assert await stash.exists(key)
        assert await stash.count() == len(KEYS)

    async def test_keys_with_prefix(self, stash: AsyncStash) -> None:
        for key in ("user:1", "user:2", "user:10", "users", "order:1", "use"):
            await stash.dump(key, 1)
        assert sorted(await stash.keys("user:")) == ["user:1", "user:10", "user:2"]
        assert sorted(await stash.keys("use")) == ["use", "user:1", "user:10", "user:2", "users"]
        assert list(await stash.keys("zzz")) == []

    async def test_delete(self, stash: AsyncStash) -> None:
        await stash.dump("a", 1)
        await stash.dump("b", 2)
        await stash.delete("a")
        await stash.delete("a")  # a missing key: no error
        await stash.delete("never")
        assert not await stash.exists("a")
        assert list(await stash.keys()) == ["b"]
        assert await stash.count() == 1

    async def test_clear(self, stash: AsyncStash) -> None:
        for i in range(5):
            await stash.dump(str(i), i)
        await stash.clear()
        assert await stash.count() == 0
        assert not await stash.exists("0")

    # ---- iteration -----------------------------------------------------------------------

    async def test_items_values_and_iteration(self, stash: AsyncStash) -> None:
        data = {f"k{i}": i for i in range(12)}
        await stash.dump_all(data.items())
        assert dict([p async for p in stash.items()]) == data
        assert sorted([v async for v in stash.values()]) == sorted(data.values())
        assert dict([p async for p in stash]) == data

    async def test_key_groups(self, stash: AsyncStash) -> None:
        await stash.dump_all((str(i), i) for i in range(7))
        groups = await stash.key_groups(3)
        assert [len(g) for g in groups] == [3, 3, 1]
        assert sorted(k for g in groups for k in g) == sorted(str(i) for i in range(7))

    async def test_many_keys_page(self, stash: AsyncStash) -> None:
        n = self.many_keys
        await stash.dump_all((f"{i:04d}", i) for i in range(n))
        assert await stash.count() == n
        assert sorted(await stash.keys()) == [f"{i:04d}" for i in range(n)]
        assert len(list(await stash.keys("01"))) == min(100, max(0, n - 100))

    # ---- batches and atomic adds -----------------------------------------------------------

    async def test_dump_all(self, stash: AsyncStash) -> None:
        await stash.dump("a", "old")
        await stash.dump_all([("a", "new"), ("b", None), ("c", [1])])
        assert await stash.get("a") == "new"
        assert await stash.get("b", "d") is None
        assert await stash.get("c") == [1]
        await stash.dump_all([])
        assert await stash.count() == 3

    async def test_add_only_if_absent(self, stash: AsyncStash) -> None:
        assert await stash.add("a", 1)
        assert not await stash.add("a", 2)
        assert await stash.get("a") == 1

    async def test_concurrent_adders_one_wins(self, stash: AsyncStash) -> None:
        key = "race-" + uuid.uuid4().hex[:6]

        def adder(i: int) -> Any:
            async def run() -> bool:
                return await stash.add(key, i)

            return run

        won = await run_concurrently_async([adder(i) for i in range(self.concurrency_workers)])
        assert won.count(True) == 1
        assert await stash.get(key) == won.index(True)
