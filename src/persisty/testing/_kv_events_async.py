# mypy: disable-error-code="index, arg-type, union-attr, misc"
"""The ``persisty.kv`` conformance tests of event sequences and the one-object store (the
sync twin ``_kv_events_sync.py`` is generated from this file)."""

from __future__ import annotations

import asyncio
import operator
import time
from typing import Any

import pytest

from persisty.errors import (
    Conflict,
    Forbidden,
    PreconditionFailed,
    ValidationError,
)
from persisty.kv import AsyncEventLog, AsyncStore, register_op
from persisty.layers import KeyRing
from persisty.query import F
from persisty.store import AsyncDatabase
from persisty.testing._concurrency import run_concurrently_async
from persisty.testing._kv_base_async import NAMESPACES, PICKLE_MARKS, AsyncKVBase, _ns


class AsyncKVEventTests(AsyncKVBase):
    """Event sequences (``EventLog``) and the one-object ``Store``."""

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
