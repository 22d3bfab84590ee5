# mypy: disable-error-code="index, arg-type, union-attr, misc"
"""The ``persisty.kv`` conformance tests of time series (the sync twin ``_kv_series_sync.py``
is generated from this file)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from persisty.errors import (
    Conflict,
    Forbidden,
    IntegrityError,
    ValidationError,
)
from persisty.kv import AsyncTimeSeries
from persisty.layers import KeyRing
from persisty.query import F
from persisty.store import AsyncDatabase
from persisty.testing._kv_base_async import NAMESPACES, AsyncKVBase, _ns

AGGREGATES = ("avg", "sum", "min", "max", "count", "first", "last")


@st.composite
def _aggregations(draw: st.DrawFn) -> tuple[dict[int, Any], int, int, int]:
    """Points ``{t: value}`` around a window ``[start, end]`` of buckets of ``bucket``:
    negative, zero and 13-digit timestamps, buckets not aligned to zero, values ints, or
    floats a sum of which is exact, or both."""
    bucket = draw(st.integers(1, 10**6))
    start = draw(st.integers(-(2**42), 2**42) | st.integers(-50, 50))
    end = start + draw(st.integers(-1, 12 * bucket))
    kind = draw(st.sampled_from(["int", "float", "both"]))
    ints = st.integers(-(10**9), 10**9)
    floats = st.integers(-4000, 4000).map(lambda i: i / 8)
    values = {"int": ints, "float": floats, "both": ints | floats}[kind]
    times = st.integers(start - bucket, max(start, end) + bucket)
    points = draw(st.dictionaries(times, values, max_size=30))
    return points, start, end, bucket


def _fold(points: dict[int, Any], start: int, end: int, bucket: int, fn: str, fill: Any) -> Any:
    """What ``aggregate`` answers, folded here point by point."""
    out: list[tuple[int, Any]] = []
    previous = None
    for b in range(start, end + 1, bucket):
        vs = [v for t, v in sorted(points.items()) if b <= t < b + bucket and t <= end]
        if not vs:
            value = previous if fill == "locf" else None
        else:
            value = {
                "avg": sum(vs) / len(vs) if vs else None,
                "sum": sum(vs),
                "min": min(vs),
                "max": max(vs),
                "count": len(vs),
                "first": vs[0],
                "last": vs[-1],
            }[fn]
        previous = value
        out.append((b, value))
    return out


class AsyncKVSeriesTests(AsyncKVBase):
    """Time series: ``TimeSeries``."""

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
        await s.extend("b", (-5, 2), (-4, "text"), (3, None), (4, 2**62), (5, 1.5))
        with pytest.raises(ValidationError):
            await s.aggregate("b", -10, 9, bucket=10, fn="sum")
        assert await s.aggregate("b", -10, 9, bucket=10, fn="count") == [(-10, 2), (0, 3)]
        assert await s.aggregate("b", -10, 9, bucket=10, fn="last") == [(-10, "text"), (0, 1.5)]
        assert await s.aggregate("b", 4, 5, bucket=1, fn="max") == [(4, 2**62), (5, 1.5)]
        assert await s.aggregate("b", 3, 2, bucket=1) == []
        e = AsyncTimeSeries(database, _ns(), keys=KeyRing({"k1": KeyRing.new_key()}))
        await e.extend("a", (0, 1), (1, "x"), (7, 3))
        assert await e.aggregate("a", 0, 9, bucket=5, fn="first") == [(0, 1), (5, 3)]
        assert await e.aggregate("a", 0, 9, bucket=5, fn="count") == [(0, 2), (5, 1)]
        assert await e.aggregate("a", 5, 9, bucket=5, fn="avg") == [(5, 3.0)]

    @settings(
        max_examples=30,
        deadline=None,
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.differing_executors,
        ],
    )
    @given(
        case=_aggregations(), fn=st.sampled_from(AGGREGATES), fill=st.sampled_from([None, "locf"])
    )
    async def test_ts_aggregate_is_the_python_fold(
        self, database: AsyncDatabase, case: Any, fn: str, fill: Any
    ) -> None:
        # on SQL the engine computes it (GROUP BY): the same values of the same types
        points, start, end, bucket = case
        s = AsyncTimeSeries(database, "aggregate-property")
        await s.discard()
        if points:
            await s.extend("p", *points.items())
        got = await s.aggregate("p", start, end, bucket=bucket, fn=fn, fill=fill)
        expected = _fold(points, start, end, bucket, fn, fill)
        assert got == expected
        assert [type(v) for _, v in got] == [type(v) for _, v in expected]

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
