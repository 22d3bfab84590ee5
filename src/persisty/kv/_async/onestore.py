"""``AsyncStore``: rstore's one object with the key/value, time-series and event-sequence
methods together (sync twin generated)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from persisty.kv._async.eventlog import AsyncEventLog
from persisty.kv._async.keyvalue import _MISSING, AsyncKeyValue
from persisty.kv._async.timeseries import AsyncTimeSeries
from persisty.kv._codec import FunctionCodec
from persisty.kv._open import frozen_missing, kv_connect_async


class AsyncStore:
    """Key/value pairs, time series and event sequences of one namespace on one object,
    as rstore's ``Store``: a context manager, read-only (``frozen``) unless told otherwise.

    ``key`` is a :class:`~persisty.layers.KeyRing` or a single key (32 bytes or their
    urlsafe base64 text, e.g. a Fernet key). Subclasses may override ``_dump``/``_load``
    (a value to text or bytes and back) as with rstore.

    Example::

        async with AsyncStore("sqlite:///data.db", frozen=False) as s:
            await s.set("k", 1)
            await s.extend("series", (1, 10), (2, 20))
            await s.apply("cart", {"apples": 3})
    """

    _freq: int | None = None

    def __init__(
        self,
        url: Any,
        namespace: str = "default",
        key: Any = None,
        frozen: bool = True,
        *,
        codec: Any = "json",
    ) -> None:
        if type(self)._dump is not AsyncStore._dump or type(self)._load is not AsyncStore._load:
            codec = FunctionCodec(self._dump, self._load)
        self.db, self._owned = kv_connect_async(url)
        options: dict[str, Any] = {"codec": codec, "keys": key, "frozen": frozen}
        self.kv = AsyncKeyValue(self.db, namespace, **options)
        self.ts = AsyncTimeSeries(self.db, namespace, **options)
        self.es = AsyncEventLog(self.db, namespace, **options)
        self.namespace = namespace
        self.frozen = frozen
        self._parts = (self.kv, self.ts, self.es)

    def _dump(self, value: Any) -> str | bytes:
        """A value as text (override with ``_load`` to change how values are stored)."""
        return self.kv.codec.encode(value)

    def _load(self, data: Any) -> Any:
        """The value of what ``_dump`` made."""
        return self.kv.codec.decode(data)

    async def open(self) -> AsyncStore:
        """Check that a frozen store exists (``Unavailable`` otherwise); parts without a
        table answer empty without touching the engine."""
        if not self.frozen:
            return self
        present = [await part.exists() for part in self._parts]
        if not any(present):
            raise frozen_missing(self.db.url, f"namespace {self.namespace!r}")
        for part, here in zip(self._parts, present, strict=True):
            part._checked = True
            part._absent = not here
        return self

    async def close(self) -> None:
        """Close the database when the store opened it from a URL."""
        if self._owned:
            await self.db.close()

    async def __aenter__(self) -> AsyncStore:
        return await self.open()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def discard(self) -> int:
        """Delete the namespace's pairs, series and sequences (no other namespace's)."""
        return await self.kv.discard() + await self.ts.discard() + await self.es.discard()

    # ---- key/value ------------------------------------------------------------------------

    async def get(self, key: str, default: Any = None) -> Any:
        """See :meth:`AsyncKeyValue.get`."""
        return await self.kv.get(key, default)

    async def set(
        self, key: str, value: Any, *, ttl: Any = None, if_match: str | None = None
    ) -> str:
        """See :meth:`AsyncKeyValue.set`."""
        return await self.kv.set(key, value, ttl=ttl, if_match=if_match)

    async def delete(self, *keys: str) -> int:
        """See :meth:`AsyncKeyValue.delete`."""
        return await self.kv.delete(*keys)

    async def has(self, key: str) -> bool:
        """See :meth:`AsyncKeyValue.has`."""
        return await self.kv.has(key)

    async def keys(self) -> list[str]:
        """See :meth:`AsyncKeyValue.keys`."""
        return await self.kv.keys()

    async def find(self, pattern: str | None = None) -> list[tuple[str, Any]]:
        """See :meth:`AsyncKeyValue.find`."""
        return await self.kv.find(pattern)

    async def items(self, prefix: str | None = None) -> list[tuple[str, Any]]:
        """See :meth:`AsyncKeyValue.items`."""
        return await self.kv.items(prefix)

    async def add(self, key: str, value: Any, *, ttl: Any = None) -> bool:
        """See :meth:`AsyncKeyValue.add`."""
        return await self.kv.add(key, value, ttl=ttl)

    async def incr(self, key: str, by: int = 1) -> int:
        """See :meth:`AsyncKeyValue.incr`."""
        return await self.kv.incr(key, by)

    async def pop(self, key: str, default: Any = _MISSING) -> Any:
        """See :meth:`AsyncKeyValue.pop`."""
        return await self.kv.pop(key, default)

    async def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        """See :meth:`AsyncKeyValue.get_many`."""
        return await self.kv.get_many(keys)

    async def set_many(self, mapping: Mapping[str, Any]) -> None:
        """See :meth:`AsyncKeyValue.set_many`."""
        await self.kv.set_many(mapping)

    async def etag(self, key: str) -> str | None:
        """See :meth:`AsyncKeyValue.etag`."""
        return await self.kv.etag(key)

    async def count(self) -> int:
        """How many key/value pairs the namespace has."""
        return await self.kv.count()

    # ---- time series ----------------------------------------------------------------------

    def _ts_freq(self, freq: int | None) -> int | None:
        return freq or self._freq

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
        """See :meth:`AsyncTimeSeries.range` (``freq`` defaults to ``_freq``)."""
        return await self.ts.range(
            key, start, n=n, end=end, freq=self._ts_freq(freq), reverse=reverse
        )

    async def first(self, key: str) -> tuple[int, Any] | None:
        """See :meth:`AsyncTimeSeries.first`."""
        return await self.ts.first(key)

    async def last(self, key: str) -> tuple[int, Any] | None:
        """See :meth:`AsyncTimeSeries.last`."""
        return await self.ts.last(key)

    async def missing(
        self, key: str, start: int, end: int | None = None, freq: int | None = None
    ) -> list[int]:
        """See :meth:`AsyncTimeSeries.missing` (``freq`` defaults to ``_freq``)."""
        return await self.ts.missing(key, start, end, self._ts_freq(freq))

    async def iscomplete(
        self, key: str, start: int, end: int | None = None, freq: int | None = None
    ) -> bool:
        """See :meth:`AsyncTimeSeries.iscomplete`."""
        return await self.ts.iscomplete(key, start, end, self._ts_freq(freq))

    async def extend(self, key: str, *points: tuple[int, Any]) -> int:
        """See :meth:`AsyncTimeSeries.extend`."""
        return await self.ts.extend(key, *points)

    async def append(self, key: str, t: int, value: Any) -> None:
        """See :meth:`AsyncTimeSeries.append`."""
        await self.ts.append(key, t, value)

    async def remove(self, *keys: str, start: int | None = None, end: int | None = None) -> int:
        """See :meth:`AsyncTimeSeries.remove`."""
        return await self.ts.remove(*keys, start=start, end=end)

    async def timeseries(self) -> list[str]:
        """See :meth:`AsyncTimeSeries.timeseries`."""
        return await self.ts.timeseries()

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
        """See :meth:`AsyncTimeSeries.aggregate`."""
        return await self.ts.aggregate(key, start, end, bucket=bucket, fn=fn, fill=fill)

    # ---- event sequences ------------------------------------------------------------------

    async def apply(
        self,
        key: str,
        changes: Mapping[str, Any],
        t: int | None = None,
        *,
        expected_version: int | None = None,
    ) -> dict[str, Any] | None:
        """See :meth:`AsyncEventLog.apply`."""
        return await self.es.apply(key, changes, t, expected_version=expected_version)

    async def current(self, key: str, withtimestamp: bool = False) -> Any:
        """See :meth:`AsyncEventLog.current`."""
        return await self.es.current(key, withtimestamp)

    async def past(self, key: str, t: int, withtimestamp: bool = False) -> Any:
        """See :meth:`AsyncEventLog.past`."""
        return await self.es.past(key, t, withtimestamp)

    async def events(
        self, key: str, start: int | None = None, end: int | None = None, ops: Any = None
    ) -> Any:
        """See :meth:`AsyncEventLog.events`."""
        return await self.es.events(key, start, end, ops)

    async def prune(self, *keys: str, remove: bool = True, before: int | None = None) -> int:
        """See :meth:`AsyncEventLog.prune`."""
        return await self.es.prune(*keys, remove=remove, before=before)

    async def eventsequences(self) -> list[str]:
        """See :meth:`AsyncEventLog.eventsequences`."""
        return await self.es.eventsequences()

    async def eventsources(self) -> list[str]:
        """The same as :meth:`eventsequences` (the name in rstore's README)."""
        return await self.es.eventsequences()
