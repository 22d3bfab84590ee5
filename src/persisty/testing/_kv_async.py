# mypy: disable-error-code="index, arg-type, union-attr, misc"
"""The conformance suite of ``persisty.kv``: key/value pairs, time series and event
sequences, as tests, run against every backend (the sync twin ``_kv_sync.py`` is
generated from this file).

Subclass it and say how to open a database on your engine::

    class TestMine(AsyncKVConformance):
        async def open_database(self, namespace):
            return persisty.aio.connect("mine://…", namespace=namespace)
        def process_url(self):
            return "mine://…"     # None when other processes cannot reach the engine

Counts of the concurrency tests are class attributes (``incr_workers``,
``incr_processes``, ``incr_each``, ``crash_points``) so slow engines can run fewer.
"""

from __future__ import annotations

import asyncio
import base64
import operator
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from persisty.errors import (
    Conflict,
    Forbidden,
    IntegrityError,
    PreconditionFailed,
    Unavailable,
    ValidationError,
)
from persisty.kv import AsyncEventLog, AsyncKeyValue, AsyncStore, AsyncTimeSeries, register_op
from persisty.layers import KeyRing
from persisty.query import F
from persisty.store import AsyncDatabase
from persisty.testing._concurrency import run_concurrently_async

NAMESPACES = ["a_b", "axb", "a.b", "a__b", "x' OR 1=1 OR '", "%", "*", "", "a:b", "~1"]
KEYS = [
    "",
    "a:b",
    "~",
    "~0~1",
    "a__b",
    "a_b",
    "axb",
    "x' OR 1=1 OR '",
    "%",
    "ünï ☃",
    "*",
    "?",
    "[x]",
    "\\",
    "a/b",
    " lead",
    "trail ",
]
PICKLE_MARKS = (b"\x80\x04", b"\x80\x03", b"\x80\x05", b"(dp0", b"cbuiltins")


def _ns() -> str:
    return "ns-" + uuid.uuid4().hex[:8]


class AsyncKVConformance:
    """``persisty.kv`` on one engine. Subclasses implement :meth:`open_database`."""

    incr_workers = 8
    incr_processes = 4
    incr_each = 250
    local_incr_each = 50
    crash_points = 10_000
    apply_count = 200

    async def open_database(self, namespace: str) -> AsyncDatabase:
        """A database on the engine under test, isolated by ``namespace``."""
        raise NotImplementedError

    def process_url(self) -> str | None:
        """A URL other processes can open the same engine with (``None``: in-process
        engines, whose multi-process tests do not apply)."""
        return None

    async def drop(self, database: AsyncDatabase) -> None:
        """Remove what a test stored (before the database is closed)."""
        for store in list(database._stores.values()):
            await store.delete_all(None)

    @pytest.fixture
    async def database(self) -> AsyncIterator[AsyncDatabase]:
        self.db_namespace = "k" + uuid.uuid4().hex[:12]
        db = await self.open_database(self.db_namespace)
        try:
            yield db
        finally:
            try:
                await self.drop(db)
            finally:
                await db.close()

    # ---- key/value ---------------------------------------------------------------------

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

    def _child(self, *args: Any) -> list[str]:
        url = self.process_url()
        assert url is not None
        mode = "async" if asyncio.iscoroutinefunction(self.open_database) else "sync"
        return [
            sys.executable,
            "-m",
            "persisty.testing._kv_worker",
            args[0],
            url,
            self.db_namespace,
            *map(str, args[1:]),
            mode,
        ]

    async def test_kv_incr_across_processes_is_exact(self, database: AsyncDatabase) -> None:
        if self.process_url() is None:
            pytest.skip("an in-process engine: other processes cannot reach it")
        ns = _ns()
        kv = AsyncKeyValue(database, ns)
        await kv.set("counter", 0)
        command = self._child("incr", ns, self.incr_workers, self.incr_each)
        procs = [
            subprocess.Popen(command)  # noqa: S603
            for _ in range(self.incr_processes)
        ]
        assert [p.wait(timeout=600) for p in procs] == [0] * self.incr_processes
        expected = self.incr_workers * self.incr_processes * self.incr_each
        assert await kv.get("counter") == expected

    # ---- time series ---------------------------------------------------------------------

    async def test_ts_rstore_semantics(self, database: AsyncDatabase) -> None:
        s = AsyncTimeSeries(database, _ns(), freq=10)
        assert await s.timeseries() == []
        assert await s.range("test", 100, end=150) == []
        assert await s.first("test") is None and await s.last("test") is None
        assert await s.missing("test", 100, 150) == [100, 110, 120, 130, 140, 150]
        assert not await s.iscomplete("test", 100, 150)
        await s.extend("test", (100, "0"))
        assert await s.first("test") == (100, "0") == await s.last("test")
        await s.extend("test", (110, "1"), (120, "2"), (130, "3"), (140, "4"), (150, "5"))
        assert await s.first("test") == (100, "0") and await s.last("test") == (150, "5")
        assert await s.missing("test", 100, 150) == []
        assert await s.missing("test", 120) == []
        assert await s.iscomplete("test", 100, 150)
        assert await s.range("test", n=2) == [(100, "0"), (110, "1")]
        assert await s.range("test", 130, n=1, end=150) == [(130, "3")]
        assert await s.range("test", 130) == [(130, "3"), (140, "4"), (150, "5")]
        assert await s.range("test", 125, end=145) == [(130, "3"), (140, "4")]
        assert await s.range("test", 125, end=145, reverse=True) == [(140, "4"), (130, "3")]
        await s.remove("test", start=120, end=120)
        assert await s.missing("test", 100, 150) == [120]
        assert await s.missing("test", 120) == [120]
        await s.remove("test")
        assert await s.range("test") == [] and await s.timeseries() == []

    async def test_ts_any_int_timestamp(self, database: AsyncDatabase) -> None:
        s = AsyncTimeSeries(database, _ns())
        ts = [-(2**63), -(10**13), -1, 0, 1, 1_700_000_000_123, 10**13 + 7, 2**63 - 1]
        await s.extend("t", *[(t, i) for i, t in enumerate(ts)])
        assert await s.range("t") == [(t, i) for i, t in enumerate(ts)]
        assert await s.range("t", -1, end=1) == [(-1, 2), (0, 3), (1, 4)]
        assert await s.first("t") == (ts[0], 0) and await s.last("t") == (ts[-1], 7)
        assert await s.missing("t", -2, 0, freq=1) == [-2]
        assert await s.missing("t", -5, 0, freq=5) == [-5]
        assert await s.missing("t", 0, 0, freq=5) == []  # end=0 is zero, not "unset"
        with pytest.raises(ValidationError):
            await s.extend("t", (2**63, 1))
        with pytest.raises(ValidationError):
            await s.extend("t", ("1", 1))

    async def test_ts_missing_is_aligned_to_its_grid(self, database: AsyncDatabase) -> None:
        s = AsyncTimeSeries(database, _ns())
        await s.extend("g", (0, 1), (5, 1), (11, 1), (20, 1))
        assert await s.missing("g", 0, 20, freq=10) == [10]
        assert await s.missing("g", 1, 21, freq=10) == [1, 21]
        assert await s.missing("g", 5, 25, freq=5) == [10, 15, 25]

    async def test_ts_extend_replaces_and_is_atomic(self, database: AsyncDatabase) -> None:
        ns = _ns()
        s = AsyncTimeSeries(database, ns)
        await s.extend("t", (1, "a"), (2, "b"))
        await s.extend("t", (2, "B"), (3, "c"), (2, "B2"))
        assert await s.range("t") == [(1, "a"), (2, "B2"), (3, "c")]
        assert await s.count("t") == 3
        with pytest.raises(ValidationError):
            await s.extend("t", (4, "d"), (5, object()))
        with pytest.raises(ValidationError):
            await s.extend("t", (4, "d"), (5,))
        assert await s.range("t") == [(1, "a"), (2, "B2"), (3, "c")]
        with pytest.raises(Conflict):
            await s.append("t", 3, "x")
        await s.append("t", 4, "d")
        await s.append("new", -5, "first")
        assert await s.last("t") == (4, "d") and await s.timeseries() == ["new", "t"]

    async def test_ts_range_pages_and_decimates(self, database: AsyncDatabase) -> None:
        s = AsyncTimeSeries(database, _ns())
        s.page_size = 7
        await s.extend("p", *[(t, t) for t in range(0, 100)])
        assert [t for t, _ in await s.range("p")] == list(range(100))
        assert [t for t, _ in await s.range("p", reverse=True)] == list(range(99, -1, -1))
        assert [t for t, _ in await s.range("p", 10, n=15)] == list(range(10, 25))
        assert [t for t, _ in await s.range("p", freq=30)] == [0, 30, 60, 90]
        assert [t for t, _ in await s.range("p", 5, freq=30, reverse=True)] == [99, 69, 39, 9]
        assert [t for t, _ in await s.range("p", 3, end=50, freq=20, n=2)] == [3, 23]
        assert await s.range("p", 50, end=40) == [] and await s.range("p", n=0) == []
        assert await s.missing("p", 0, 99, freq=1) == []

    async def test_ts_aggregate(self, database: AsyncDatabase) -> None:
        s = AsyncTimeSeries(database, _ns())
        await s.extend("a", (0, 1), (1, 3), (2, 5), (10, 10), (25, 7))
        assert await s.aggregate("a", 0, 29, bucket=10) == [(0, 3.0), (10, 10.0), (20, 7.0)]
        assert await s.aggregate("a", 0, 39, bucket=10, fn="sum") == [
            (0, 9),
            (10, 10),
            (20, 7),
            (30, None),
        ]
        assert await s.aggregate("a", 0, 39, bucket=10, fn="max", fill="locf") == [
            (0, 5),
            (10, 10),
            (20, 7),
            (30, 7),
        ]
        assert [v for _, v in await s.aggregate("a", 0, 29, bucket=10, fn="count")] == [3, 1, 1]
        assert [v for _, v in await s.aggregate("a", 0, 29, bucket=10, fn="first")] == [1, 10, 7]
        assert [v for _, v in await s.aggregate("a", 0, 9, bucket=10, fn="min")] == [1]
        with pytest.raises(ValidationError):
            await s.aggregate("a", 0, 9, bucket=10, fn="median")

    async def test_ts_encrypted(self, database: AsyncDatabase) -> None:
        ns = _ns()
        s = AsyncTimeSeries(database, ns, keys=KeyRing({"k": KeyRing.new_key()}))
        await s.extend("t", (1, "plain-one"), (2, "plain-two"))
        assert await s.range("t") == [(1, "plain-one"), (2, "plain-two")]
        rows = [p async for p in s.raw.search_all(F.ns == "/" + ns)]
        assert [p.t for p in rows] == [1, 2]  # timestamps stay searchable
        assert all("plain" not in (p.value or "") for p in rows)
        one = rows[0]
        await s.raw.update(type(one)(ns="/" + ns, series="/t", t=2, value=one.value))
        with pytest.raises(IntegrityError):
            await s.range("t")

    async def test_ts_namespaces_are_data(self, database: AsyncDatabase) -> None:
        series = {ns: AsyncTimeSeries(database, ns) for ns in NAMESPACES}
        for ns, s in series.items():
            await s.extend("t", (1, ns))
        await series["a_b"].discard()
        assert await series["a_b"].timeseries() == []
        for ns, s in series.items():
            if ns != "a_b":
                assert await s.range("t") == [(1, ns)] and await s.timeseries() == ["t"]

    async def test_ts_frozen(self, database: AsyncDatabase) -> None:
        ns = _ns()
        await AsyncTimeSeries(database, ns).extend("t", (1, 1))
        s = AsyncTimeSeries(database, ns, frozen=True)
        for call in (
            lambda: s.extend("t", (2, 2)),
            lambda: s.remove("t"),
            lambda: s.append("t", 5, 1),
            s.discard,
        ):
            with pytest.raises(Forbidden):
                await call()
        assert await s.range("t") == [(1, 1)]

    async def test_ts_crash_during_extend_leaves_all_or_none(self, database: AsyncDatabase) -> None:
        if self.process_url() is None:
            pytest.skip("an in-process engine: other processes cannot reach it")
        ns = _ns()
        proc = subprocess.Popen(  # noqa: S603
            self._child("extend", ns, self.crash_points), stdout=subprocess.PIPE, text=True
        )
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "start"
        time.sleep(0.15)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
        s = AsyncTimeSeries(database, ns)
        assert await s.count("crash") in (0, self.crash_points)

    # ---- event sequences ---------------------------------------------------------------------

    async def test_es_rstore_semantics(self, database: AsyncDatabase) -> None:
        s = AsyncEventLog(database, _ns())
        ts = round(time.time() * 1000)
        assert await s.eventsequences() == []
        assert await s.current("test") is None and await s.past("test", ts) is None
        assert await s.events("test") is None
        assert await s.apply("test", {}) is None
        state = await s.apply("test", {"int_item": 1, "str_item": "Hello", "bool_item": False})
        assert state == {"int_item": 1, "str_item": "Hello", "bool_item": False}
        assert await s.current("test") == state
        t0, _ = await s.current("test", withtimestamp=True)
        await asyncio.sleep(0.01)
        ts = round(time.time() * 1000)
        await asyncio.sleep(0.01)
        assert await s.apply("test", {"str_item": (operator.delitem, None)}) == {
            "int_item": 1,
            "bool_item": False,
        }
        assert await s.past("test", ts) == {"int_item": 1, "str_item": "Hello", "bool_item": False}
        assert (await s.apply("test", {"bool_item": (operator.not_, None)}))["bool_item"] is True
        assert (await s.apply("test", {"bool_item": (operator.not_,)}))["bool_item"] is False
        assert (await s.apply("test", {"int_item": (operator.add, 10)}))["int_item"] == 11
        assert (await s.apply("test", {"int_item": (operator.neg, None)}))["int_item"] == -11
        assert await s.apply("test", {}) == {"int_item": -11, "bool_item": False}
        assert await s.apply("test", {"int_item": 10}) == {"int_item": 10, "bool_item": False}
        assert len(await s.events("test")) == 7
        assert len(await s.events("test", start=ts)) == 6
        assert len(await s.events("test", start=ts, end=ts)) == 0
        assert len(await s.events("test", end=round(time.time() * 1000) + 10)) == 7
        assert len(await s.events("test", ops=[operator.not_])) == 2
        assert len(await s.events("test", ops=operator.add)) == 1
        first = (await s.events("test"))[0]
        assert first == (
            t0,
            {
                "int_item": (operator.setitem, 1),
                "str_item": (operator.setitem, "Hello"),
                "bool_item": (operator.setitem, False),
            },
        )
        ho = {"int_item": 10, "bool_item": False, "str_item": "Ho Ho Ho"}
        assert await s.apply("test", {"str_item": "Ho Ho Ho"}) == ho
        assert await s.apply("test", {"str_item": "Too old"}, ts) == ho
        with pytest.raises(Conflict):
            await s.apply("test", {"str_item": "Too old"}, ts)
        assert await s.apply("test", {"str2_item": "Added"}, ts + 1) == {**ho, "str2_item": "Added"}
        assert (
            await s.apply(
                "test",
                {
                    i: (operator.delitem, None)
                    for i in ("str_item", "bool_item", "str2_item", "int_item")
                },
            )
            == {}
        )
        assert await s.eventsequences() == ["test"] == await s.eventsources()
        await s.prune("test", remove=True)
        assert await s.current("test") is None and await s.eventsequences() == []

    async def test_es_bad_change_writes_nothing(self, database: AsyncDatabase) -> None:
        s = AsyncEventLog(database, _ns())
        await s.apply("d", {"n": 1, "text": "a"})
        for bad in (
            {"n": (operator.truediv, 0)},
            {"missing": (operator.add, 1)},
            {"text": (operator.add, 1)},
            {"gone": (operator.delitem, None)},
            {"n": (operator.concat, [1])},
            {"n": object()},
            {"n": (print, 1)},
            {1: 2},
        ):
            with pytest.raises(ValidationError):
                await s.apply("d", bad)
        assert await s.current("d") == {"n": 1, "text": "a"}
        assert len(await s.events("d")) == 1
        assert await s.version("d") == 1

    async def test_es_ops_by_name_and_custom(self, database: AsyncDatabase) -> None:
        ns = _ns()
        s = AsyncEventLog(database, ns)
        register_op("kv_test_max", max)
        await s.apply("d", {"n": 2, "l": [1], "x": 7.0, "b": True})
        state = await s.apply(
            "d", {"n": (operator.mul, 5), "l": (operator.concat, [2]), "x": (operator.floordiv, 2)}
        )
        assert state == {"n": 10, "l": [1, 2], "x": 3.0, "b": True}
        state = await s.apply(
            "d", {"n": (operator.mod, 4), "x": (operator.pow, 2), "b": ("not_", None)}
        )
        assert state == {"n": 2, "l": [1, 2], "x": 9.0, "b": False}
        assert (await s.apply("d", {"n": ("kv_test_max", 17)}))["n"] == 17
        assert (await s.apply("d", {"n": (max, 3)}))["n"] == 17
        assert (await s.apply("d", {"n": (operator.sub, 1)}))["n"] == 16
        async for row in s.raw.search_all(F.ns == "/" + ns):
            assert not any(row.data.encode().startswith(m) for m in PICKLE_MARKS)
            assert "builtins" not in row.data

    async def test_es_rapid_applies_get_increasing_times(self, database: AsyncDatabase) -> None:
        s = AsyncEventLog(database, _ns())
        for i in range(self.apply_count):
            await s.apply("fast", {"i": i})
        times = [t for t, _ in await s.events("fast")]
        assert len(times) == self.apply_count and times == sorted(set(times))
        assert await s.current("fast") == {"i": self.apply_count - 1}
        assert await s.version("fast") == self.apply_count

    async def test_es_expected_version_one_writer_wins(self, database: AsyncDatabase) -> None:
        s = AsyncEventLog(database, _ns())
        await s.apply("d", {"n": 0})

        def writer(i: int) -> Any:
            async def run() -> str:
                try:
                    await s.apply("d", {"n": i}, expected_version=1)
                    return "won"
                except PreconditionFailed:
                    return "lost"

            return run

        results = await run_concurrently_async([writer(i) for i in range(1, 5)])
        assert results.count("won") == 1
        assert await s.version("d") == 2
        with pytest.raises(PreconditionFailed):
            await s.apply("d", {"n": 9}, expected_version=1)

    async def test_es_concurrent_applies_all_land(self, database: AsyncDatabase) -> None:
        s = AsyncEventLog(database, _ns())
        await s.apply("c", {"n": 0})

        async def worker() -> None:
            for _ in range(5):
                await s.apply("c", {"n": (operator.add, 1)})

        await run_concurrently_async([worker for _ in range(4)])
        assert await s.current("c") == {"n": 20}
        assert len(await s.events("c")) == 21

    async def test_es_prune_before_keeps_current_and_later_past(
        self, database: AsyncDatabase
    ) -> None:
        s = AsyncEventLog(database, _ns())
        for i in range(10):
            await s.apply("p", {"n": i, f"k{i}": i} if i % 3 else {"n": i}, t=100 + 10 * i)
        await s.apply("p", {"k1": (operator.delitem, None)}, t=300)
        before = {t: await s.past("p", t) for t in range(140, 310, 5)}
        current = await s.current("p")
        await s.prune("p", before=150, remove=False)
        assert await s.current("p") == current
        for t, state in before.items():
            assert await s.past("p", t) == state, t
        events = await s.events("p")
        assert events[0][0] == 140 and len(events) == 7
        assert await s.past("p", 130) is None
        await s.prune("p", before=150)
        assert await s.past("p", 140) == before[140]
        await s.apply("p", {"late": 1}, t=145)
        assert (await s.past("p", 150))["late"] == 1
        with pytest.raises(ValidationError):
            await s.apply("p", {"early": 1}, t=120)

    async def test_es_encrypted(self, database: AsyncDatabase) -> None:
        ns = _ns()
        s = AsyncEventLog(database, ns, keys=KeyRing({"k": KeyRing.new_key()}))
        await s.apply("doc", {"title_item": "plain-title"}, t=1)
        await s.apply("doc", {"title_item": (operator.add, "-more")}, t=2)
        assert await s.current("doc") == {"title_item": "plain-title-more"}
        assert await s.events("doc") == [
            (1, {"title_item": (operator.setitem, "plain-title")}),
            (2, {"title_item": (operator.add, "-more")}),
        ]
        async for row in s.raw.search_all(F.ns == "/" + ns):
            assert "plain" not in row.data and "title_item" not in row.data
            assert "add" not in row.data and "setitem" not in row.data

    async def test_es_namespaces_and_frozen(self, database: AsyncDatabase) -> None:
        logs = {ns: AsyncEventLog(database, ns) for ns in NAMESPACES}
        for ns, log in logs.items():
            await log.apply("d", {"ns": ns}, t=1)
        await logs["a__b"].discard()
        for ns, log in logs.items():
            assert await log.current("d") == (None if ns == "a__b" else {"ns": ns})
        frozen = AsyncEventLog(database, "a_b", frozen=True)
        for call in (
            lambda: frozen.apply("d", {"x": 1}),
            lambda: frozen.prune("d"),
            frozen.discard,
        ):
            with pytest.raises(Forbidden):
                await call()
        assert await frozen.current("d") == {"ns": "a_b"}
        assert len(await frozen.events("d")) == 1

    # ---- the one-object store ---------------------------------------------------------------

    async def test_one_object_store(self, database: AsyncDatabase) -> None:
        ns = _ns()
        async with AsyncStore(database, ns, frozen=False) as s:
            s._freq = 10
            await s.set("test", "Some str")
            await s.extend("series", (100, "0"), (110, "1"), (130, "3"))
            await s.apply("doc", {"a": 1})
            assert await s.missing("series", 100, 130) == [120]
            assert await s.range("series", 100, end=130) == [(100, "0"), (110, "1"), (130, "3")]
        async with AsyncStore(database, ns) as ro:
            assert await ro.get("test") == "Some str" and await ro.keys() == ["test"]
            assert await ro.current("doc") == {"a": 1}
            assert await ro.timeseries() == ["series"]
            with pytest.raises(Forbidden):
                await ro.set("test", 1)
            with pytest.raises(Forbidden):
                await ro.apply("doc", {"a": 2})
        async with AsyncStore(database, ns, frozen=False) as s:
            await s.discard()
            assert await s.keys() == [] and await s.timeseries() == []
            assert await s.eventsequences() == []
