"""``cached()``: wrap a sync or async Store in the cache layer."""

from __future__ import annotations

import hashlib
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

            import hashlib
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
    scope = _rules_scope(store)
    if cache is None or cache == "memory":
        backend: Any = (
            layer.AsyncMemoryCache(max_items, seconds)
            if asynchronous
            else (layer.MemoryCache(max_items, seconds))  # type: ignore[attr-defined]
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
            layer.AsyncRedisCache(cache, name, seconds)
            if asynchronous
            else (layer.RedisCache(cache, name, seconds))  # type: ignore[attr-defined]
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
        return layer.AsyncCachedStore(store, backend, copies=copies)
    return layer.CachedStore(store, backend, copies=copies)  # type: ignore[attr-defined]


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
    from persisty.layers._async.secured import AsyncSecuredStore
    from persisty.layers._sync.secured import SecuredStore

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
