"""HTTP byte ranges and conditional requests for file downloads (RFC 9110 sections 13 and 14).

``parse_range`` answers a ``Range`` header the way Starlette's ``FileResponse`` does (the
de-facto behaviour of the ASGI ecosystem, checked by a property test against it): a
malformed header is 400, a range starting past the end 416, more than 100 ranges are
ignored, several ranges are sorted and merged. ``evaluate`` applies ``If-Match``,
``If-Unmodified-Since``, ``If-None-Match``, ``If-Modified-Since`` and ``If-Range`` in the
order RFC 9110 §13.2.2 gives.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime

from persisty.errors import PersistyError

MAX_RANGES = 100


class RangeNotSatisfiable(PersistyError):
    """416: a range starts at or past the end of the file."""

    code = "range_not_satisfiable"
    status = 416
    size = 0

    @property
    def headers(self) -> dict[str, str]:
        return {"Content-Range": f"bytes */{self.size}"}


class MalformedRange(PersistyError):
    """400: the ``Range`` header cannot be read."""

    code = "invalid_range"
    status = 400


def _bounds(part: str, size: int) -> tuple[int, int] | None:
    """``[start, end)`` of one ``first-last`` / ``first-`` / ``-suffix`` spec, or ``None``
    when the spec is not one (such specs are skipped, as Starlette skips them)."""
    first, sep, last = part.partition("-")
    if not sep:
        return None
    first, last = first.strip(), last.strip()
    try:
        if not first:
            return max(size - int(last), 0), size
        start = int(first)
        if last and int(last) < size:
            return start, int(last) + 1
        return start, size
    except ValueError:
        return None


def parse_range(header: str, size: int) -> list[tuple[int, int]]:
    """The half-open ranges a ``Range`` header asks of a file of ``size`` bytes.

    ``[]`` means "answer the whole file" (more than 100 ranges); ``MalformedRange`` (400)
    and ``RangeNotSatisfiable`` (416) are the errors. Several ranges come back sorted, with
    overlapping ones merged.

    Example::

        parse_range("bytes=0-9", 100)        # [(0, 10)]
        parse_range("bytes=-10", 100)        # [(90, 100)]
        parse_range("bytes=50-,0-4", 100)    # [(0, 5), (50, 100)]
    """
    unit, sep, specs = header.partition("=")
    if not sep:
        raise MalformedRange("the Range header is malformed", field="Range")
    if unit.strip().lower() != "bytes":
        raise MalformedRange("only byte ranges are supported", field="Range")
    if specs.count(",") + 1 > MAX_RANGES:
        return []
    ranges = []
    for raw in specs.split(","):
        part = raw.strip()
        if part and part != "-":
            bounds = _bounds(part, size)
            if bounds is not None:
                ranges.append(bounds)
    if not ranges:
        raise MalformedRange("the Range header names no range", field="Range")
    if any(not 0 <= start < size for start, _ in ranges):
        error = RangeNotSatisfiable(f"the file has {size} bytes", field="Range")
        error.size = size
        raise error
    if any(start >= end for start, end in ranges):
        raise MalformedRange("a range ends before it starts", field="Range")
    if len(ranges) == 1:
        return ranges
    ranges.sort()
    merged = [ranges[0]]
    for start, end in ranges[1:]:
        last_start, last_end = merged[-1]
        if start <= last_end:
            merged[-1] = (last_start, max(last_end, end))
        else:
            merged.append((start, end))
    return merged


class Multipart:
    """The parts of a ``multipart/byteranges`` body: the boundary, each part's header and
    the total length (known before any byte is read, for ``Content-Length``).

    Example::

        body = Multipart([(0, 5), (90, 100)], 100, "image/png")
        body.content_type      # 'multipart/byteranges; boundary=…'
        body.head(0, 5)        # b'--…\\r\\nContent-Type: image/png\\r\\nContent-Range: …'
    """

    def __init__(self, ranges: list[tuple[int, int]], size: int, content_type: str) -> None:
        # 26 hex digits: about the 100 bits of entropy browsers use for their boundaries
        self.boundary = secrets.token_hex(13)
        self.ranges = ranges
        self.size = size
        self.part_type = content_type
        self.length = sum(len(self.head(s, e)) + (e - s) + 2 for s, e in ranges) + len(self.tail)

    @property
    def content_type(self) -> str:
        return f"multipart/byteranges; boundary={self.boundary}"

    def head(self, start: int, end: int) -> bytes:
        """What precedes the bytes ``[start, end)`` in the body."""
        return (
            f"--{self.boundary}\r\nContent-Type: {self.part_type}\r\n"
            f"Content-Range: bytes {start}-{end - 1}/{self.size}\r\n\r\n"
        ).encode("latin-1")

    @property
    def tail(self) -> bytes:
        return f"--{self.boundary}--".encode("latin-1")


# ---- conditional requests ----------------------------------------------------------------


def http_date(moment: datetime) -> str:
    """``moment`` as an IMF-fixdate (``Sun, 06 Nov 1994 08:49:37 GMT``)."""
    return format_datetime(moment.astimezone(UTC).replace(microsecond=0), usegmt=True)


def _parse_date(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        parsed = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if parsed is None:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def entity_tags(header: str | None) -> list[str] | None:
    """The entity tags of an ``If-Match`` / ``If-None-Match`` header as written (quotes and
    ``W/`` kept); ``["*"]`` for any, ``None`` without the header."""
    if header is None:
        return None
    tags, rest = [], header.strip()
    while rest:
        if rest.startswith("*"):
            tags.append("*")
            rest = rest[1:]
        else:
            weak = rest.startswith("W/")
            body = rest[2:] if weak else rest
            if not body.startswith('"'):
                cut = body.find(",")
                tags.append(body[: cut if cut >= 0 else len(body)].strip())
                rest = body[cut:] if cut >= 0 else ""
            else:
                close = body.find('"', 1)
                if close < 0:
                    tags.append(body)
                    break
                tags.append(("W/" if weak else "") + body[: close + 1])
                rest = body[close + 1 :]
        rest = rest.lstrip().removeprefix(",").lstrip()
    return [t for t in tags if t]


def _strong(tag: str) -> str | None:
    return None if tag.startswith("W/") else tag


def _weak_equal(a: str, b: str) -> bool:
    return a.removeprefix("W/") == b.removeprefix("W/")


class Conditions:
    """The outcome of a request's preconditions for a file with ``etag`` (quoted) and
    ``last_modified``: ``status`` 412 or 304 to answer now (``None``: go on), and whether
    a ``Range`` still applies (``If-Range``)."""

    __slots__ = ("status", "use_range")

    def __init__(self, status: int | None, use_range: bool) -> None:
        self.status = status
        self.use_range = use_range


def evaluate(
    get: Callable[[str], str | None], method: str, etag: str | None, last_modified: datetime | None
) -> Conditions:
    """The preconditions of a request (``get`` reads a header) for the current file
    (``etag`` ``None``: there is none), in RFC 9110's order.

    Example::

        evaluate({"if-none-match": '"abc"'}.get, "GET", '"abc"', None).status   # 304
    """
    safe = method in ("GET", "HEAD")
    modified = last_modified.replace(microsecond=0) if last_modified is not None else None
    if_match = entity_tags(get("if-match"))
    if if_match is not None:
        if etag is None or not ("*" in if_match or etag in [_strong(t) for t in if_match]):
            return Conditions(412, False)
    else:
        since = _parse_date(get("if-unmodified-since"))
        if since is not None and modified is not None and modified > since:
            return Conditions(412, False)
    if_none = entity_tags(get("if-none-match"))
    if if_none is not None:
        if etag is not None and ("*" in if_none or any(_weak_equal(etag, t) for t in if_none)):
            return Conditions(304 if safe else 412, False)
    elif safe:
        since = _parse_date(get("if-modified-since"))
        if since is not None and modified is not None and modified <= since:
            return Conditions(304, False)
    if_range = get("if-range")
    use_range = True
    if if_range is not None:
        if if_range.startswith("W/"):
            use_range = False
        elif if_range.startswith('"'):
            use_range = etag is not None and if_range == etag
        else:
            use_range = modified is not None and if_range == http_date(modified)
    return Conditions(None, use_range)
