"""``AsyncTimeSeries``: integer-timestamped points in one namespace (sync twin generated)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from persisty.errors import Conflict, ValidationError
from persisty.kv._async._aggregate import on_engine
from persisty.kv._async._base import AsyncService, put_items
from persisty.kv._async._sqlfast import insert_all
from persisty.kv._codec import encode_many
from persisty.kv._logic import (
    Buckets,
    check_freq,
    check_key,
    check_points,
    check_time,
    decimate,
    grid,
)
from persisty.kv._models import Point
from persisty.query import F, Filter
from persisty.store import gc_paused

PAGE = 1000
"""Points read per query by ``range`` (and written per batch by ``extend`` on engines whose
atomic batches are smaller)."""


class AsyncTimeSeries(AsyncService):
    """Time series (rstore's names): points ``(t, value)`` with any 64-bit int ``t``.

    ``range`` reads pages of points seeking by ``(series, t)`` on the engine; ``extend``
    adds or replaces points all at once; ``freq`` is the default spacing of ``range``
    (decimation) and of ``missing`` (the grid ``start, start + freq, …``).

    Example::

        ts = AsyncTimeSeries("sqlite:///data.db", freq=10)
        await ts.extend("temp", (100, 21.5), (110, 21.7))
        await ts.last("temp")                     # (110, 21.7)
        await ts.missing("temp", 100, 130)        # [120, 130]
    """

    model = Point
    page_size = PAGE

    def __init__(
        self,
        db_or_url: Any,
        namespace: str = "default",
        *,
        freq: int | None = None,
        codec: Any = "json",
        keys: Any = None,
        frozen: bool = False,
    ) -> None:
        super().__init__(db_or_url, namespace, codec=codec, keys=keys, frozen=frozen)
        self.freq = check_freq(freq)

    def _series(self, key: str) -> Filter:
        return self.mine & (F.series == "/" + check_key(key))

    def _point(self, key: str, t: int, value: Any) -> Point:
        return Point(ns=self.ns, series="/" + key, t=check_time(t), value=self._encode(value))

    async def _scan(
        self,
        key: str,
        start: int | None,
        end: int | None,
        *,
        reverse: bool = False,
        freq: int | None = None,
        n: int | None = None,
    ) -> AsyncIterator[tuple[int, Any]]:
        """Points of ``key`` in ``[start, end]``, a page per query, seeking past what
        decimation skips."""
        if not await self._ready():
            return
        base = self._series(key)
        lo, hi = start, end
        kept: int | None = None
        left = n
        while left is None or left > 0:
            f = base
            if lo is not None:
                f = f & (F.t >= lo)
            if hi is not None:
                f = f & (F.t <= hi)
            limit = self.page_size
            if left is not None and freq is None:
                limit = min(limit, left)
            page = await self.store.search(f, order=[-F.t if reverse else +F.t], limit=limit)
            points = page.items
            for t, v in decimate(((p.t, p) for p in points), freq, reverse, kept):
                kept = t
                yield t, self._decode(v.value)
                if left is not None:
                    left -= 1
                    if left == 0:
                        return
            if len(points) < limit:
                return
            edge = points[-1].t
            if reverse:
                hi = edge - 1 if kept is None or freq is None else min(edge - 1, kept - freq)
            else:
                lo = edge + 1 if kept is None or freq is None else max(edge + 1, kept + freq)

    async def range(
        self,
        key: str,
        start: int | None = None,
        *,
        n: int | None = None,
        end: int | None = None,
        freq: int | None = None,
        reverse: bool = False,
    ) -> list[tuple[int, Any]]:
        """``[(t, value)]`` with ``start <= t <= end`` (inclusive; open when ``None``), at
        most ``n``, keeping only points at least ``freq`` apart (default: the series'
        ``freq``), newest first with ``reverse``."""
        start = None if start is None else check_time(start, "start")
        end = None if end is None else check_time(end, "end")
        if n is not None and (not isinstance(n, int) or isinstance(n, bool) or n < 0):
            raise ValidationError("n must be a non-negative int", field="n")
        if n == 0 or (start is not None and end is not None and end < start):
            return []
        freq = check_freq(freq) or self.freq
        return [p async for p in self._scan(key, start, end, reverse=reverse, freq=freq, n=n)]

    async def _edge(self, key: str, newest: bool) -> tuple[int, Any] | None:
        if not await self._ready():
            return None
        page = await self.store.search(self._series(key), order=[-F.t if newest else +F.t], limit=1)
        if not page.items:
            return None
        p = page.items[0]
        return p.t, self._decode(p.value)

    async def first(self, key: str) -> tuple[int, Any] | None:
        """The oldest point of ``key``, else ``None``."""
        return await self._edge(key, False)

    async def last(self, key: str) -> tuple[int, Any] | None:
        """The newest point of ``key``, else ``None``."""
        return await self._edge(key, True)

    async def missing(
        self, key: str, start: int, end: int | None = None, freq: int | None = None
    ) -> list[int]:
        """The timestamps of the grid ``start, start + freq, …, <= end`` (``end`` defaults
        to ``start``) that have no point; read by key, a batch at a time."""
        start = check_time(start, "start")
        end = start if end is None else check_time(end, "end")
        step = check_freq(freq) or self.freq
        if step is None:
            raise ValidationError("missing needs a freq (here or on the series)", field="freq")
        check_key(key)
        ts = list(grid(start, end, step))
        if not await self._ready():
            return ts
        result: list[int] = []
        meta = self.raw.meta
        for i in range(0, len(ts), self.page_size):
            chunk = ts[i : i + self.page_size]
            found = await self.store.read_batch(
                [meta.key_string((self.ns, "/" + key, t)) for t in chunk]
            )
            result.extend(t for t, p in zip(chunk, found, strict=True) if p is None)
        return result

    async def iscomplete(
        self, key: str, start: int, end: int | None = None, freq: int | None = None
    ) -> bool:
        """Whether ``missing`` is empty."""
        return not await self.missing(key, start, end, freq)

    async def extend(self, key: str, *points: tuple[int, Any]) -> int:
        """Add or replace the points ``(t, value)`` of ``key``, all or none (a later point
        of the same ``t`` in one call wins); return how many were written."""
        self._writable()
        await self._ready()
        check_key(key)
        times, values = check_points(points)
        # every value is encoded (a bad one fails the call, even if a later point replaces it)
        latest = dict(zip(times, encode_many(self.codec, values), strict=True))
        if not latest:
            return 0
        # no point of the series in the call's span yet (one range query): every point is
        # a create, without reading their keys first (a point added meanwhile makes the
        # batch fail whole, and the next attempt reads)
        span = self._series(key) & (F.t >= min(latest)) & (F.t <= max(latest))
        fresh = not (await self.store.search(span, limit=1)).items
        ns, series = self.ns, "/" + key
        with gc_paused():  # (the points built here all stay alive)
            news = [Point(ns=ns, series=series, t=t, value=v) for t, v in latest.items()]
            if fresh and self.store is self.raw and await insert_all(self.raw, news):
                return len(news)  # SQL: one executemany of the store's INSERT
        await put_items(self.store, news, self.atomic_limit, fresh=fresh)
        return len(latest)

    async def append(self, key: str, t: int, value: Any) -> None:
        """Add a point after the last one (``Conflict`` when ``t <= last``)."""
        self._writable()
        point = self._point(check_key(key), t, value)
        last = await self._edge(key, True)
        if last is not None and t <= last[0]:
            raise Conflict(f"{key!r}: t={t} is not after the last point ({last[0]})")
        await self.store.create(point)

    async def remove(self, *keys: str, start: int | None = None, end: int | None = None) -> int:
        """Delete the points of ``keys`` with ``start <= t <= end`` (open when ``None``);
        return how many were deleted."""
        self._writable()
        if not await self._ready():
            return 0
        total = 0
        for key in keys:
            f = self._series(key)
            if start is not None:
                f = f & (F.t >= check_time(start, "start"))
            if end is not None:
                f = f & (F.t <= check_time(end, "end"))
            total += await self.store.delete_all(f)
        return total

    async def timeseries(self) -> list[str]:
        """The series of this namespace, in order: one query per series (a skip scan)."""
        return await self._distinct("series", "t")

    async def aggregate(
        self,
        key: str,
        start: int,
        end: int,
        *,
        bucket: int,
        fn: str = "avg",
        fill: str | None = None,
    ) -> list[tuple[int, Any]]:
        """``[(bucket start, fn of its points)]`` for the buckets ``[start + i*bucket,
        start + (i+1)*bucket)`` up to ``end``; an empty bucket is ``None``, or the previous
        bucket's value with ``fill="locf"``. On SQL one ``GROUP BY`` statement computes it
        (``count``, ``first``, ``last`` always; ``sum``, ``avg``, ``min``, ``max`` under
        the JSON codec without encryption), elsewhere the points are folded in Python:
        the same result either way (float sums up to the engine's rounding order)."""
        start, end = check_time(start, "start"), check_time(end, "end")
        acc = Buckets(start, end, bucket, fn, fill)
        check_key(key)
        if end >= start and await self._ready() and not await on_engine(self, key, acc):
            async for t, v in self._scan(key, start, end):
                acc.add(t, v)
        return acc.result()

    async def count(self, key: str) -> int:
        """How many points ``key`` has (counted on the engine)."""
        if not await self._ready():
            return 0
        return await self.store.count(self._series(key))

    async def discard(self) -> int:
        """Delete every point of this namespace (and of no other); return how many."""
        self._writable()
        if not await self._ready():
            return 0
        return await self.store.delete_all(self.mine)
