"""``TimeSeries.aggregate`` on the SQL engines: one ``GROUP BY`` bucket statement (through
``persisty.backends.sql``'s ``AsyncSqlGroups``) instead of streaming every point.

The engine answers only what it answers exactly as the Python fold does; otherwise
:func:`on_engine` returns ``False`` and the caller folds the points in Python:

* ``count``: ``count(*)`` per bucket (any codec, encrypted or not);
* ``first``/``last``: ``min(t)``/``max(t)`` per bucket, then one batch read of those points;
* ``sum``/``avg``/``min``/``max`` (JSON codec, no encryption): per bucket the rows, the rows
  holding an integer (of at most 15 digits), those holding a float, and ``fn`` of each
  reading. A bucket of only such integers answers with the integer aggregate (exact), one
  of only floats with the float one; a bucket holding anything else (text, ``null``, a
  bool: Python's error; a longer integer) or both integers and floats (Python keeps the
  type of the extreme it met) goes to Python.
"""

from __future__ import annotations

from typing import Any

from persisty.backends.sql import AsyncSqlGroups, AsyncSqlStore, SqlAggregate, SqlBucket
from persisty.errors import Unavailable
from persisty.kv._codec import JsonCodec
from persisty.kv._logic import Buckets
from persisty.query import F

_INT64 = 2**63


async def on_engine(ts: Any, key: str, acc: Buckets) -> bool:
    """Fill ``acc.values`` from one grouped query on ``ts``'s SQL engine; ``False`` (and
    ``acc`` untouched) when the engine cannot answer exactly."""
    raw = ts.raw
    if not isinstance(raw, AsyncSqlStore) or acc.end - acc.start >= _INT64:
        return False
    fn = acc.fn
    numeric = fn in ("avg", "sum", "min", "max")
    if numeric and (ts.key_ring is not None or type(ts.codec) is not JsonCodec):
        return False
    f = ts._series(key) & (F.t >= acc.start) & (F.t <= acc.end)
    if fn == "count":
        aggregates = [SqlAggregate("count")]
    elif fn in ("first", "last"):
        aggregates = [SqlAggregate("min" if fn == "first" else "max", "t")]
    else:
        op: Any = "sum" if fn == "avg" else fn
        aggregates = [
            SqlAggregate("count"),
            SqlAggregate("count", "value", number="int"),
            SqlAggregate("count", "value", number="float"),
            SqlAggregate(op, "value", number="int"),
            SqlAggregate(op, "value", number="float"),
        ]
    try:
        rows = await AsyncSqlGroups(raw).rows(
            f, aggregates, bucket=SqlBucket("t", acc.start, acc.bucket)
        )
    except Unavailable:  # e.g. a 64-bit sum that overflowed on SQLite
        return False
    values: dict[int, Any] = {}
    if fn == "count":
        values = {acc.bucket_of(int(r[0])): int(r[1]) for r in rows}
    elif fn in ("first", "last"):
        times = {acc.bucket_of(int(r[0])): int(r[1]) for r in rows}
        meta, series = raw.meta, "/" + key
        found = await ts.store.read_batch(
            [meta.key_string((ts.ns, series, t)) for t in times.values()]
        )
        if any(p is None for p in found):  # removed meanwhile: fold what is there now
            return False
        values = {b: ts._decode(p.value) for b, p in zip(times, found, strict=True)}
    else:
        for index, n, n_int, n_float, v_int, v_float in rows:
            if n_int != n and n_float != n:
                return False
            v = int(v_int) if n_int == n else float(v_float)
            values[acc.bucket_of(int(index))] = v / int(n) if fn == "avg" else v
    acc.values.update(values)
    return True
