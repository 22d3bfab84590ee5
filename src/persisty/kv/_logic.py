"""Pure logic shared by the sync and async services: key patterns, timestamps, the
time-series grid, decimation and aggregation."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from persisty.errors import ValidationError

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1


def check_key(key: Any, field: str = "key") -> str:
    """``key`` if it is a string (any string is a key)."""
    if not isinstance(key, str):
        raise ValidationError(f"{field} must be a string, not {type(key).__name__}", field=field)
    return key


def check_namespace(namespace: Any) -> str:
    """``namespace`` if it is a string (any string is a namespace)."""
    if not isinstance(namespace, str):
        raise ValidationError("namespace must be a string", field="namespace")
    return namespace


def check_time(t: Any, field: str = "t") -> int:
    """``t`` if it is an int in the 64-bit range every engine holds."""
    if not isinstance(t, int) or isinstance(t, bool):
        raise ValidationError(f"{field} must be an int, not {t!r}", field=field)
    if not INT64_MIN <= t <= INT64_MAX:
        raise ValidationError(f"{field} is outside the 64-bit range", field=field)
    return t


def check_points(points: Sequence[Any]) -> tuple[list[int], list[Any]]:
    """The times and the values of ``points``, each a ``(t, value)`` pair with ``t`` as
    :func:`check_time` allows (checked in bulk, point by point only to name a bad one)."""
    if not all(type(p) in _PAIRS and len(p) == 2 for p in points):
        for p in points:
            if not isinstance(p, tuple | list) or len(p) != 2:
                raise ValidationError("a point is a (t, value) pair", field="points")
    times = [p[0] for p in points]
    if times and (
        not all(type(t) is int for t in times) or min(times) < INT64_MIN or max(times) > INT64_MAX
    ):
        times = [check_time(t) for t in times]
    return times, [p[1] for p in points]


_PAIRS = (tuple, list)


def check_freq(freq: Any) -> int | None:
    if freq is None:
        return None
    if not isinstance(freq, int) or isinstance(freq, bool) or freq <= 0:
        raise ValidationError("freq must be a positive int", field="freq")
    return freq


def event_pos(t: int) -> str:
    """The order-preserving text of an event time (``"e"`` + 16 hex digits)."""
    return "e" + format(check_time(t) - INT64_MIN, "016x")


HEAD_POS = "h"
EVENTS_FIRST = "e"
EVENTS_LAST = "e~"


# ---- key patterns -------------------------------------------------------------------------


def glob_prefix(pattern: str) -> tuple[str, re.Pattern[str] | None]:
    """The literal prefix of a glob (``*`` any run, ``?`` one character, matched against
    the whole key) and the regex for the rest (``None`` when the pattern is all literal
    up to a final ``*``, so the prefix alone decides)."""
    check_key(pattern, "pattern")
    cut = len(pattern)
    for i, ch in enumerate(pattern):
        if ch in "*?":
            cut = i
            break
    prefix = pattern[:cut]
    rest = pattern[cut:]
    if rest == "*":
        return prefix, None
    parts = []
    for ch in pattern:
        parts.append(".*" if ch == "*" else "." if ch == "?" else re.escape(ch))
    return prefix, re.compile("".join(parts), re.DOTALL)


# ---- time series ---------------------------------------------------------------------------


def grid(start: int, end: int, freq: int) -> range:
    """``start, start + freq, …`` up to ``end`` inclusive."""
    return range(start, end + 1, freq) if end >= start else range(0)


def decimate(
    points: Iterable[tuple[int, Any]],
    freq: int | None,
    reverse: bool = False,
    last_kept: int | None = None,
) -> Iterator[tuple[int, Any]]:
    """Keep the first point, then each point at least ``freq`` after the last kept one
    (before it, when ``reverse``)."""
    for t, v in points:
        if (
            freq is not None
            and last_kept is not None
            and ((t < last_kept + freq) if not reverse else (t > last_kept - freq))
        ):
            continue
        last_kept = t
        yield t, v


AGGREGATES = ("avg", "sum", "min", "max", "count", "first", "last")


class Buckets:
    """Aggregation of points into buckets ``[start + i*bucket, start + (i+1)*bucket)``."""

    def __init__(self, start: int, end: int, bucket: int, fn: str, fill: str | None) -> None:
        if fn not in AGGREGATES:
            raise ValidationError(f"fn must be one of {', '.join(AGGREGATES)}", field="fn")
        if fill not in (None, "locf"):
            raise ValidationError("fill must be None or 'locf'", field="fill")
        if not isinstance(bucket, int) or isinstance(bucket, bool) or bucket <= 0:
            raise ValidationError("bucket must be a positive int", field="bucket")
        self.start, self.end, self.bucket, self.fn, self.fill = start, end, bucket, fn, fill
        self.acc: dict[int, list[Any]] = {}
        self.values: dict[int, Any] = {}  # buckets computed elsewhere (on the engine)

    def bucket_of(self, index: int) -> int:
        """The start of the bucket ``index`` (``(t - start) // bucket`` of its points)."""
        return self.start + index * self.bucket

    def add(self, t: int, value: Any) -> None:
        if self.fn not in ("count", "first", "last") and (
            isinstance(value, bool) or not isinstance(value, int | float)
        ):
            raise ValidationError(
                f"point {t}: {self.fn} needs numbers, not {value!r}", field="value"
            )
        b = self.start + (t - self.start) // self.bucket * self.bucket
        acc = self.acc.get(b)
        if acc is None:
            self.acc[b] = [value, value, value, value, 1, value]  # sum min max first n last
            return
        if self.fn in ("avg", "sum"):
            acc[0] += value
        elif self.fn == "min":
            acc[1] = min(acc[1], value)
        elif self.fn == "max":
            acc[2] = max(acc[2], value)
        acc[4] += 1
        acc[5] = value

    def result(self) -> list[tuple[int, Any]]:
        out: list[tuple[int, Any]] = []
        previous: Any = None
        for b in grid(self.start, self.end, self.bucket):
            acc = self.acc.get(b)
            if b in self.values:
                value = self.values[b]
            elif acc is None:
                value = previous if self.fill == "locf" else None
            else:
                s, lo, hi, first, n, last = acc
                value = (
                    s / n
                    if self.fn == "avg"
                    else {"sum": s, "min": lo, "max": hi, "count": n, "first": first, "last": last}[
                        self.fn
                    ]
                )
            previous = value
            out.append((b, value))
        return out
