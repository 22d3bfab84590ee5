"""The cache layer: a read-through cache over a store, in process (LRU) or in Redis (async
source, generated sync twin, and :func:`cached`, which picks the side)."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any, TypeVar, overload

from persisty.errors import ValidationError
from persisty.layers._dispatch import is_async
from persisty.layers._primitives import CacheStats
from persisty.layers.cache._async import AsyncCachedStore
from persisty.layers.cache._backends_async import (
    AsyncCacheBackend,
    AsyncMemoryCache,
    AsyncRedisCache,
)
from persisty.layers.cache._backends_sync import CacheBackend, MemoryCache, RedisCache
from persisty.layers.cache._sync import CachedStore
from persisty.layers.secured import AsyncSecuredStore, SecuredStore
from persisty.store import AsyncStore, Store

__all__ = [
    "AsyncCacheBackend",
    "AsyncCachedStore",
    "AsyncMemoryCache",
    "AsyncRedisCache",
    "CacheBackend",
    "CacheStats",
    "CachedStore",
    "MemoryCache",
    "RedisCache",
    "cached",
]

T = TypeVar("T")

DEFAULT_TTL = timedelta(seconds=30)


def _seconds(ttl: timedelta | float | None) -> float | None:
    if ttl is None:
        return None
    seconds = ttl.total_seconds() if isinstance(ttl, timedelta) else float(ttl)
    if seconds <= 0:
        raise ValidationError("ttl must be positive (or None for no expiry)", field="ttl")
    return seconds


@overload
def cached(
    store: AsyncStore[T],
    *,
    cache: Any = None,
    ttl: timedelta | float | None = ...,
    max_items: int = ...,
    prefix: str | None = None,
    copies: bool = False,
) -> AsyncStore[T]: ...


@overload
def cached(
    store: Store[T],
    *,
    cache: Any = None,
    ttl: timedelta | float | None = ...,
    max_items: int = ...,
    prefix: str | None = None,
    copies: bool = False,
) -> Store[T]: ...


def cached(
    store: Any,
    *,
    cache: Any = None,
    ttl: timedelta | float | None = DEFAULT_TTL,
    max_items: int = 10_000,
    prefix: str | None = None,
    copies: bool = False,
) -> Any:
    """A read-through cache over ``store`` (sync in, sync out; async in, async out).

    ``cache`` is ``None`` for an in-process LRU of at most ``max_items`` entries, a
    ``redis://`` URL for a cache shared by several processes (keys under ``prefix``, by
    default ``persisty:cache:<database>:<namespace>:<store name>:``), or a ready cache
    backend object. Over a secured store (``cached(secured(...))``) a Redis cache's keys also
    carry a digest of the principal's effective rules, so principals never share entries, and
    a cache object is refused; ``secured(cached(store))`` is the stacking that shares one
    cache safely (see docs/security.md). ``ttl`` (a
    timedelta or seconds) bounds how stale an entry can be after a write made around this
    layer; writes through it invalidate at once. The in-process cache returns the cached
    objects themselves (fast; do not mutate them) unless ``copies=True`` asks for a fresh
    copy on every read; the Redis cache always returns fresh copies.

    Example::

        from persisty.layers import cached

        notes = cached(db.store(Note), ttl=timedelta(seconds=30), max_items=10_000)
        shared = cached(db.store(Note), cache="redis://127.0.0.1:6379/0")
        notes.read(key); notes.read(key)
        notes.stats.hits   # 1
    """
    seconds = _seconds(ttl)
    if not isinstance(max_items, int) or isinstance(max_items, bool) or max_items < 1:
        raise ValidationError("max_items must be a positive integer", field="max_items")
    asynchronous = is_async(store, "cached")
    scope = _rules_scope(store)
    if cache is None or cache == "memory":
        backend: Any = (
            AsyncMemoryCache(max_items, seconds)
            if asynchronous
            else MemoryCache(max_items, seconds)
        )
    elif isinstance(cache, str):
        if not cache.startswith(("redis://", "rediss://", "unix://")):
            raise ValidationError(
                f"unknown cache {cache!r} (use None or a redis:// URL)", field="cache"
            )
        if seconds is None:
            raise ValidationError("a Redis cache needs a ttl", field="ttl")
        name = (
            prefix
            if prefix is not None
            else (f"persisty:cache:{_identity(store)}:{store.meta.name}:")
        )
        if scope is not None:  # one principal's view of the store: never another's entries
            name += f"rules:{scope}:"
        backend = (
            AsyncRedisCache(cache, name, seconds)
            if asynchronous
            else RedisCache(cache, name, seconds)
        )
    else:
        if scope is not None:
            raise ValidationError(
                "cached() over a secured store with a cache object: the object may be shared "
                "by several principals, whose views differ. Put the cache under the access "
                "control (secured(cached(store), ...)), or give a redis:// URL (entries are "
                "then keyed by the principal's rules) or no cache (one per principal)",
                field="cache",
            )
        backend = cache
    if asynchronous:
        return AsyncCachedStore(store, backend, copies=copies)
    return CachedStore(store, backend, copies=copies)


def _identity(store: Any) -> str:
    """The database and namespace of the backend store under ``store``'s layers."""
    s = store
    while s is not None:
        pages = getattr(s, "pages", None)
        if pages is not None and hasattr(pages, "identity"):
            return str(pages.identity)
        s = getattr(s, "inner", None)
    return "_:_"


def _rules_scope(store: Any) -> str | None:
    """A digest of the effective rules of every secured layer under ``store`` (``None``
    when there is none): what one principal may see through it."""
    found: list[Any] = []
    s = store
    while s is not None:
        if isinstance(s, AsyncSecuredStore | SecuredStore):
            r = s.rules
            found.append(
                [
                    repr(r.read),
                    repr(r.create),
                    repr(r.update),
                    repr(r.delete),
                    None if r.readable is None else sorted(r.readable),
                    None if r.writable is None else sorted(r.writable),
                    sorted((k, repr(v)) for k, v in r.forced.items()),
                    sorted(s.hidden),
                ]
            )
        s = getattr(s, "inner", None)
    if not found:
        return None
    return hashlib.sha256(repr(found).encode()).hexdigest()[:24]
