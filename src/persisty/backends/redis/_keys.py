"""Sync helpers of the Redis backend: URL options, key names, the page-key secret and the
translation of redis-py's connection errors into persisty's ``Unavailable``."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import redis
import redis.exceptions

from persisty.errors import Unavailable as PersistyUnavailable
from persisty.errors import ValidationError

DEFAULT_PREFIX = "persisty"


def parse_url(url: str, prefix: str | None) -> tuple[str, str]:
    """redis-py's URL (persisty's own query options removed) and the key prefix."""
    parts = urlsplit(url)
    if parts.scheme.split("+")[0] not in ("redis", "rediss", "unix"):
        raise ValidationError(f"not a redis URL: {url!r}", field="url")
    query = parse_qsl(parts.query, keep_blank_values=True)
    rest = []
    for name, value in query:
        if name == "prefix":
            prefix = prefix or value
        else:
            rest.append((name, value))
    scheme = parts.scheme.split("+")[0]
    clean = urlunsplit((scheme, parts.netloc, parts.path, urlencode(rest), parts.fragment))
    prefix = prefix or DEFAULT_PREFIX
    if any(c in prefix for c in "{}*?[]\\ ") or not prefix:
        raise ValidationError(f"invalid key prefix {prefix!r}", field="prefix")
    return clean, prefix


def base_name(prefix: str, namespace: str | None, store: str) -> str:
    """The start of every key of one store: ``<prefix>:{<namespace>:<store>}``."""
    return f"{prefix}:{{{namespace or '_'}:{store}}}"


def namespace_pattern(prefix: str, namespace: str | None) -> bytes:
    """A SCAN pattern matching every key of every store in ``namespace``."""
    return f"{prefix}:{{{namespace or '_'}:*".encode()


def load_secret(url: str, prefix: str) -> bytes:
    """The page-key secret kept in Redis under ``<prefix>:secret`` (created once)."""
    name = f"{prefix}:secret"
    with translate(), redis.Redis.from_url(url) as client:
        client.set(name, secrets.token_hex(32), nx=True)
        value = client.get(name)
    if not isinstance(value, bytes):
        raise PersistyUnavailable("could not read the page-key secret from Redis")
    return value


CONNECTION_ERRORS = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)
"""redis-py's errors that say the server cannot be reached (for ``except`` on hot paths)."""


def unavailable(e: Exception) -> PersistyUnavailable:
    """persisty's ``Unavailable`` for one of redis-py's :data:`CONNECTION_ERRORS`."""
    return PersistyUnavailable(f"Redis is unavailable: {e}")


@contextlib.contextmanager
def translate() -> Iterator[None]:
    """Turn redis-py's connection and timeout errors into ``Unavailable``."""
    try:
        yield
    except CONNECTION_ERRORS as e:
        raise unavailable(e) from e
