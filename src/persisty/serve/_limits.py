"""The API's limits: request body size, JSON nesting depth, and what one GraphQL request may
ask for (depth, cost, root fields, batch sizes, time). Checked before anything is executed."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import msgspec
from starlette.requests import Request

from persisty.errors import PersistyError, ValidationError


class PayloadTooLarge(PersistyError):
    """The request body is larger than the API accepts (``Limits.max_body``)."""

    code = "payload_too_large"
    status = 413


@dataclass(frozen=True)
class Limits:
    """What one request may ask of the API; give ``app(..., limits=Limits(...))``.

    ``max_body``: bytes of a request body (413 beyond it, refused before the rest is read).
    ``max_depth``: nesting of JSON in bodies, filters, preconditions and GraphQL variables
    (422 beyond it). GraphQL: ``graphql_depth`` (nesting of selections),
    ``graphql_cost`` (the most items a query may resolve: every list multiplies what is
    under it by its ``limit``, its number of keys or the default page size, and aliases
    add up), ``graphql_root_fields`` (fields and aliases at the top of an operation),
    ``graphql_batch`` (keys of a batch read, edits of a batch edit), ``graphql_tokens``
    (size of the document), ``graphql_timeout`` (seconds, a backstop: a query still running
    then is answered with an error, so every answer comes within 2 s). Introspection has
    its own allowance (``graphql_introspection_cost``): GraphiQL's schema query stays within
    it.

    Example::

        from persisty.serve import app, Limits
        asgi = app(db, [Note], limits=Limits(max_body=256 * 1024, graphql_cost=2_000))
    """

    max_body: int = 1 << 20
    max_depth: int = 64
    graphql_depth: int = 10
    graphql_cost: int = 10_000
    graphql_root_fields: int = 20
    graphql_batch: int = 1000
    graphql_tokens: int = 20_000
    graphql_timeout: float = 1.8
    graphql_introspection_cost: int = 200_000

    def __post_init__(self) -> None:
        for name in (
            "max_body",
            "max_depth",
            "graphql_depth",
            "graphql_cost",
            "graphql_root_fields",
            "graphql_batch",
            "graphql_tokens",
            "graphql_introspection_cost",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValidationError(f"{name} must be a positive integer", field=name)
        if not isinstance(self.graphql_timeout, int | float) or self.graphql_timeout <= 0:
            raise ValidationError(
                "graphql_timeout must be a positive number of seconds", field="graphql_timeout"
            )


def too_deep(value: Any, limit: int) -> bool:
    """Whether ``value`` (decoded JSON) nests lists and objects deeper than ``limit``."""
    stack = [(value, 1)]
    while stack:
        v, depth = stack.pop()
        if depth > limit:
            return True
        children = v.values() if isinstance(v, dict) else v
        stack.extend((c, depth + 1) for c in children if isinstance(c, dict | list))
    return False


class BadRequest(PersistyError):
    """The request could not be read (malformed JSON, wrong content)."""

    code = "bad_request"
    status = 400


def decode_json(body: bytes | str, limits: Limits, what: str = "the body") -> Any:
    """``body`` decoded, refusing JSON nested deeper than ``limits.max_depth`` (422)."""
    try:
        data = msgspec.json.decode(body)
    except RecursionError:
        data = None
        deep = True
    except msgspec.DecodeError as e:
        raise BadRequest(f"{what} is not valid JSON ({e})") from None
    else:
        deep = isinstance(data, dict | list) and too_deep(data, limits.max_depth)
    if deep:
        raise ValidationError(
            f"{what} nests JSON deeper than {limits.max_depth} levels", field=None
        )
    return data


async def read_body(request: Request, limits: Limits) -> bytes:
    """The request body, refused with 413 as soon as it is longer than ``limits.max_body``
    (by its Content-Length, or while it streams in)."""
    cached = getattr(request, "_body", None)
    if cached is not None:
        return bytes(cached)
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            size = -1
        if size > limits.max_body:
            raise PayloadTooLarge(f"the body is larger than {limits.max_body} bytes")
    chunks: list[bytes] = []
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limits.max_body:
            raise PayloadTooLarge(f"the body is larger than {limits.max_body} bytes")
        chunks.append(chunk)
    body = b"".join(chunks)
    request._body = body  # later reads of the body get it without the stream
    return body


def check_query_json(pairs: Mapping[str, str] | list[tuple[str, str]], limits: Limits) -> None:
    """Refuse a ``filter`` JSON in query-string pairs nested deeper than the limit."""
    items = pairs.items() if isinstance(pairs, Mapping) else pairs
    for k, v in items:
        if k == "filter":
            try:
                decode_json(v, limits, "filter")
            except ValidationError as e:
                raise ValidationError(e.message, field="filter") from None
            except PersistyError:
                raise ValidationError("filter is not valid JSON", field="filter") from None
