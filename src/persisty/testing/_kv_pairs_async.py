# mypy: disable-error-code="index, arg-type, union-attr, misc"
"""The ``persisty.kv`` conformance tests of key/value pairs (the sync twin ``_kv_pairs_sync.py``
is generated from this file)."""

from __future__ import annotations

import asyncio
import base64
import subprocess
from typing import Any

import pytest

from persisty.errors import (
    Forbidden,
    IntegrityError,
    PreconditionFailed,
    Unavailable,
    ValidationError,
)
from persisty.kv import AsyncEventLog, AsyncKeyValue, AsyncStore, AsyncTimeSeries
from persisty.layers import KeyRing
from persisty.query import F
from persisty.store import AsyncDatabase
from persisty.testing._concurrency import run_concurrently_async
from persisty.testing._kv_base_async import KEYS, NAMESPACES, PICKLE_MARKS, AsyncKVBase, _ns


class AsyncKVPairTests(AsyncKVBase):
    """Key/value pairs: ``KeyValue``."""

    async def test_kv_set_get_has_delete(self, database: AsyncDatabase) -> None:
        kv = AsyncKeyValue(database, _ns())
        assert await kv.get("test") is None
        assert await kv.get("test", "Default") == "Default"
        await kv.set("test", "Some str")
        assert await kv.get("test") == "Some str"
        assert await kv.has("test")
        assert await kv.keys() == ["test"]
        assert await kv.delete("test") == 1
        assert not await kv.has("test")
        assert await kv.delete("test", "nothing") == 0
        await kv.set("none", None)
        assert await kv.has("none") and await kv.get("none", 5) is None
        values = [0, -1, 2**62, 1.5, True, False, "", "text", [1, "a", None], {"a": {"b": [1]}}]
        for i, v in enumerate(values):
            await kv.set(f"v{i}", v)
        for i, v in enumerate(values):
            got = await kv.get(f"v{i}")
            assert got == v and type(got) is type(v)

    async def test_kv_any_string_is_a_key(self, database: AsyncDatabase) -> None:
        kv = AsyncKeyValue(database, _ns())
        for i, k in enumerate(KEYS):
            await kv.set(k, i)
        assert await kv.keys() == sorted(KEYS)
        assert await kv.count() == len(KEYS)
        for i, k in enumerate(KEYS):
            assert await kv.get(k) == i
        assert await kv.get_many([*KEYS, "missing"]) == {k: i for i, k in enumerate(KEYS)}
        with pytest.raises(ValidationError):
            await kv.set(1, "x")

    async def test_kv_find_is_a_whole_key_glob(self, database: AsyncDatabase) -> None:
        kv = AsyncKeyValue(database, _ns())
        await kv.set("test.key1", 0)
        await kv.set("test.key1", 1)
        await kv.set("test.key2", 2)
        await kv.set("key3.test.abcd", 3)
        await kv.set("testxkey9", 9)
        await kv.set("a_b", 4)
        await kv.set("axb", 5)
        assert sorted(await kv.find()) == sorted(await kv.items())
        assert await kv.find("test.*") == [("test.key1", 1), ("test.key2", 2)]
        assert await kv.find("test.abc*") == []
        assert await kv.find("test.key?") == [("test.key1", 1), ("test.key2", 2)]
        assert await kv.find("*.test.*") == [("key3.test.abcd", 3)]
        assert await kv.find("a_b") == [("a_b", 4)]
        assert await kv.find("a?b") == [("a_b", 4), ("axb", 5)]
        assert await kv.find("test") == []
        assert await kv.find("*key1") == [("test.key1", 1)]
        assert await kv.items(prefix="test.") == [("test.key1", 1), ("test.key2", 2)]
        assert await kv.count() == 6

    async def test_kv_set_if_match_add_incr_pop(self, database: AsyncDatabase) -> None:
        kv = AsyncKeyValue(database, _ns())
        tag = await kv.set("k", 1)
        assert await kv.etag("k") == tag
        assert await kv.etag("missing") is None
        tag2 = await kv.set("k", 2, if_match=tag)
        with pytest.raises(PreconditionFailed):
            await kv.set("k", 3, if_match=tag)
        assert await kv.get("k") == 2 and await kv.etag("k") == tag2
        assert await kv.add("new", "first") is True
        assert await kv.add("new", "second") is False
        assert await kv.get("new") == "first"
        assert await kv.incr("n") == 1
        assert await kv.incr("n", 10) == 11
        assert await kv.incr("n", -12) == -1
        await kv.set("s", "text")
        with pytest.raises(ValidationError):
            await kv.incr("s")
        assert await kv.get("s") == "text"
        assert await kv.pop("n") == -1
        assert await kv.pop("n", "gone") == "gone"
        with pytest.raises(KeyError):
            await kv.pop("n")

    async def test_kv_set_many_is_all_or_nothing(self, database: AsyncDatabase) -> None:
        kv = AsyncKeyValue(database, _ns())
        await kv.set("a", 0)
        await kv.set_many({"a": 1, "b": 2, "c": [3]})
        assert await kv.get_many(["a", "b", "c"]) == {"a": 1, "b": 2, "c": [3]}
        with pytest.raises(ValidationError):
            await kv.set_many({"a": 10, "d": object()})
        assert await kv.get("a") == 1 and not await kv.has("d")

    async def test_kv_ttl(self, database: AsyncDatabase) -> None:
        kv = AsyncKeyValue(database, _ns())
        await kv.set("short", 1, ttl=1.0)  # a second: a loaded engine still reads it first
        await kv.set("long", 2, ttl=3600)
        assert await kv.get("short") == 1
        await asyncio.sleep(1.3)
        assert await kv.get("short") is None and not await kv.has("short")
        assert await kv.get("long") == 2
        assert await kv.add("short", 3) is True
        with pytest.raises(ValidationError):
            await kv.set("bad", 1, ttl=-1)

    async def test_kv_namespaces_are_data(self, database: AsyncDatabase) -> None:
        stores = {ns: AsyncKeyValue(database, ns) for ns in NAMESPACES}
        for ns, kv in stores.items():
            await kv.set("k", ns)
            await kv.set(ns, ns)
        for ns, kv in stores.items():
            assert await kv.get("k") == ns
            assert await kv.count() == len({"k", ns})
            assert {k for k, _ in await kv.find("*")} == {"k", ns}
        await stores["x' OR 1=1 OR '"].discard()
        await stores["%"].discard()
        assert await stores["x' OR 1=1 OR '"].keys() == []
        for ns, kv in stores.items():
            if ns not in ("x' OR 1=1 OR '", "%"):
                assert await kv.get("k") == ns

    async def test_kv_frozen_refuses_every_write(self, database: AsyncDatabase) -> None:
        ns = _ns()
        writer = AsyncKeyValue(database, ns)
        await writer.set("k", 1)
        frozen = AsyncKeyValue(database, ns, frozen=True)
        await frozen.check()
        for call in (
            lambda: frozen.set("k", 2),
            lambda: frozen.delete("k"),
            lambda: frozen.add("x", 1),
            lambda: frozen.incr("k"),
            lambda: frozen.pop("k"),
            lambda: frozen.set_many({"k": 3}),
            frozen.discard,
        ):
            with pytest.raises(Forbidden):
                await call()
        assert await frozen.get("k") == 1 and await frozen.keys() == ["k"]

    async def test_frozen_missing_store_is_unavailable(self, database: AsyncDatabase) -> None:
        for cls in (AsyncKeyValue, AsyncTimeSeries, AsyncEventLog):
            with pytest.raises(Unavailable):
                await cls(database, _ns(), frozen=True).check()
        with pytest.raises(Unavailable):
            await AsyncStore(database, _ns()).open()
        for cls in (AsyncKeyValue, AsyncTimeSeries, AsyncEventLog):
            assert not await cls(database, _ns()).exists()

    async def test_kv_encrypted(self, database: AsyncDatabase) -> None:
        ns = _ns()
        k1, k2 = KeyRing.new_key(), KeyRing.new_key()
        kv = AsyncKeyValue(database, ns, keys=KeyRing({"k1": k1}))
        await kv.set("secret", "plaintext-value-1")
        await kv.set("other", {"n": "plaintext-2"})
        assert await kv.incr("count") == 1 and await kv.incr("count") == 2
        assert await kv.get("secret") == "plaintext-value-1"
        assert await kv.find("sec*") == [("secret", "plaintext-value-1")]
        raw = {p.key[1:]: p async for p in kv.raw.search_all(F.ns == "/" + ns)}
        assert set(raw) == {"secret", "other", "count"}  # keys stay searchable
        for p in raw.values():
            assert p.num is None and "plaintext" not in (p.value or "")
        moved = raw["secret"]
        await kv.raw.update(type(moved)(ns="/" + ns, key="/other", value=moved.value))
        with pytest.raises(IntegrityError):
            await kv.get("other")
        rotated = AsyncKeyValue(database, ns, keys=KeyRing({"k1": k1, "k2": k2}, current="k2"))
        assert await rotated.get("secret") == "plaintext-value-1"
        await rotated.set("fresh", 1)
        with pytest.raises(Exception):  # noqa: B017
            await kv.get("fresh")
        single = AsyncKeyValue(database, _ns(), keys=base64.urlsafe_b64encode(k1))
        await single.set("x", [1, 2])
        assert await single.get("x") == [1, 2]

    async def test_kv_rows_hold_no_pickle(self, database: AsyncDatabase) -> None:
        ns = _ns()
        kv = AsyncKeyValue(database, ns)
        await kv.set("v", {"a": [1, 2.5, "x"]})
        async for p in kv.raw.search_all(F.ns == "/" + ns):
            assert p.value is not None and not any(
                p.value.encode().startswith(m) for m in PICKLE_MARKS
            )
            assert p.value == '{"a":[1,2.5,"x"]}'

    async def test_kv_concurrent_add_wins_once(self, database: AsyncDatabase) -> None:
        kv = AsyncKeyValue(database, _ns())

        def worker(i: int) -> Any:
            return lambda: kv.add("once", i)

        results = await run_concurrently_async([worker(i) for i in range(8)])
        assert results.count(True) == 1
        assert await kv.get("once") == results.index(True)

    async def test_kv_concurrent_incr_is_exact(self, database: AsyncDatabase) -> None:
        kv = AsyncKeyValue(database, _ns())

        async def worker() -> None:
            for _ in range(self.local_incr_each):
                await kv.incr("counter")

        await run_concurrently_async([worker for _ in range(self.incr_workers)])
        assert await kv.get("counter") == self.incr_workers * self.local_incr_each
        if self.incr_native:
            assert kv.retries + int(getattr(kv.raw, "retries", 0)) == 0

    @pytest.mark.parametrize("ttl", ["no-ttl", "ttl"])
    async def test_kv_len_is_exact_after_writers_in_processes(
        self, database: AsyncDatabase, ttl: str
    ) -> None:
        if self.process_url() is None:
            pytest.skip("an in-process engine: other processes cannot reach it")
        ns = _ns()
        kv = AsyncKeyValue(database, ns)
        await kv.set("kept", 1)  # a key no worker touches
        procs = [
            subprocess.Popen(self._child("churn", ns, seed, self.churn_steps, ttl))  # noqa: S603
            for seed in range(4)
        ]
        for p in procs:
            p.wait(timeout=600)
        assert [p.returncode for p in procs] == [0] * 4
        keys = await kv.keys()
        assert "kept" in keys
        assert await kv.count() == len(keys)
        assert await AsyncKeyValue(database, ns).count() == len(keys)  # (a new opening)

    async def test_kv_len_counts_expiring_keys_until_they_expire(
        self, database: AsyncDatabase
    ) -> None:
        kv = AsyncKeyValue(database, _ns())
        await kv.set_many({"a": 1, "b": 2})
        await kv.set("d", 4, ttl=3600)
        assert await kv.count() == 3
        await kv.set("a", 1, ttl=3600)  # gets an expiry, stays one key
        await kv.set("d", 4)  # loses it
        assert await kv.count() == 3
        assert await kv.add("e", 5, ttl=3600) and not await kv.add("b", 0)
        assert await kv.pop("a") == 1 and await kv.delete("b", "zz") == 1
        assert await kv.count() == 2 == len(await kv.keys())
        await kv.set("c", 3, ttl=1.5)  # a second and a half: a loaded engine counts it first
        assert await kv.count() == 3
        await asyncio.sleep(1.8)
        assert await kv.count() == 2 == len(await kv.keys())  # c expired
        await kv.set("c", 30)  # over the expired pair
        assert await kv.count() == 3
        assert await kv.discard() == 3 and await kv.count() == 0

    async def test_kv_incr_across_processes_is_exact(self, database: AsyncDatabase) -> None:
        if self.process_url() is None:
            pytest.skip("an in-process engine: other processes cannot reach it")
        ns = _ns()
        kv = AsyncKeyValue(database, ns)
        await kv.set("counter", 0)
        command = self._child("incr", ns, self.incr_workers, self.incr_each)
        procs = [
            subprocess.Popen(command, stdout=subprocess.PIPE, text=True)  # noqa: S603
            for _ in range(self.incr_processes)
        ]
        outs = [p.communicate(timeout=600)[0] for p in procs]
        assert [p.returncode for p in procs] == [0] * self.incr_processes
        expected = self.incr_workers * self.incr_processes * self.incr_each
        assert await kv.get("counter") == expected
        retries = sum(int(line.split()[1]) for o in outs for line in o.splitlines())
        if self.incr_native:  # one atomic engine operation: no write is ever tried again
            assert retries == 0
