"""``cached()``: wrap a sync or async Store in the cache layer."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, TypeVar, overload

from persisty.errors import ValidationError
from persisty.store import AsyncStore, Store

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
def cached(store: AsyncStore[T], *, cache: Any = None, ttl: timedelta | float | None = ...,
           max_items: int = ..., prefix: str | None = None,
           copies: bool = False) -> AsyncStore[T]: ...


@overload
def cached(store: Store[T], *, cache: Any = None, ttl: timedelta | float | None = ...,
           max_items: int = ..., prefix: str | None = None,
           copies: bool = False) -> Store[T]: ...


def cached(store: Any, *, cache: Any = None, ttl: timedelta | float | None = DEFAULT_TTL,
           max_items: int = 10_000, prefix: str | None = None, copies: bool = False) -> Any:
    """A read-through cache over ``store`` (sync in, sync out; async in, async out).

    ``cache`` is ``None`` for an in-process LRU of at most ``max_items`` entries, a
    ``redis://`` URL for a cache shared by several processes (keys under ``prefix``, by
    default ``persisty:cache:<store name>:``), or a ready cache backend object. ``ttl`` (a
    timedelta or seconds) bounds how stale an entry can be after a write made around this
    layer; writes through it invalidate at once. The in-process cache returns the cached
    objects themselves (fast; do not mutate them) unless ``copies=True`` asks for a fresh
    copy on every read; the Redis cache always returns fresh copies.

    Example::

        from datetime import timedelta
        from persisty.layers import cached

        notes = cached(db.store(Note), ttl=timedelta(seconds=30), max_items=10_000)
        shared = cached(db.store(Note), cache="redis://127.0.0.1:6379/0")
        notes.read(key); notes.read(key)
        notes.stats.hits   # 1
    """
    seconds = _seconds(ttl)
    if not isinstance(max_items, int) or isinstance(max_items, bool) or max_items < 1:
        raise ValidationError("max_items must be a positive integer", field="max_items")
    asynchronous = isinstance(store, AsyncStore)
    if not asynchronous and not isinstance(store, Store):
        raise ValidationError(f"cached() takes a Store, got {type(store).__name__}")
    if asynchronous:
        from persisty.layers._async import cache as layer
    else:
        from persisty.layers._sync import cache as layer  # type: ignore[no-redef]
    if cache is None or cache == "memory":
        backend: Any = layer.AsyncMemoryCache(max_items, seconds) if asynchronous else (
            layer.MemoryCache(max_items, seconds))  # type: ignore[attr-defined]
    elif isinstance(cache, str):
        if not cache.startswith(("redis://", "rediss://", "unix://")):
            raise ValidationError(f"unknown cache {cache!r} (use None or a redis:// URL)",
                                  field="cache")
        if seconds is None:
            raise ValidationError("a Redis cache needs a ttl", field="ttl")
        name = prefix if prefix is not None else f"persisty:cache:{store.meta.name}:"
        backend = layer.AsyncRedisCache(cache, name, seconds) if asynchronous else (
            layer.RedisCache(cache, name, seconds))  # type: ignore[attr-defined]
    else:
        backend = cache
    if asynchronous:
        return layer.AsyncCachedStore(store, backend, copies=copies)
    return layer.CachedStore(store, backend, copies=copies)  # type: ignore[attr-defined]
