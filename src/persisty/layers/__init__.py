"""Layers: Stores that wrap a Store and add caching, access control, encryption, sharding or
change events; each is itself a Store (sync or async, like the store it wraps).

Example::

    from persisty.layers import Policy, Principal, cached, secured

    notes = cached(db.store(Note), ttl=timedelta(seconds=30))
    mine = secured(notes, Policy.owner("owner"), Principal("ann", scopes={"user"}))
"""

from persisty.layers.cache import (
    AsyncCachedStore,
    AsyncMemoryCache,
    CachedStore,
    CacheStats,
    MemoryCache,
    cached,
)
from persisty.layers.encrypted import (
    AsyncEncryptedStore,
    EncryptedStore,
    KeyRing,
    MissingKeyError,
    encrypted,
    sealed_model,
)
from persisty.layers.observed import (
    AsyncObservedStore,
    AsyncSubscription,
    Change,
    HookFailure,
    ObservedStore,
    Subscription,
    events,
    observed,
)
from persisty.layers.related import AsyncRelatedStore, RelatedStore, related
from persisty.layers.secured import (
    AsyncSecuredStore,
    Policy,
    Principal,
    Rules,
    SecuredStore,
    secured,
)
from persisty.layers.sharded import AsyncShardedStore, ShardedStore, shard_model, sharded
from persisty.model import BelongsTo, HasMany, HasOne, relations_of

__all__ = [
    "AsyncCachedStore",
    "AsyncEncryptedStore",
    "AsyncMemoryCache",
    "AsyncObservedStore",
    "AsyncRelatedStore",
    "AsyncSecuredStore",
    "AsyncShardedStore",
    "AsyncSubscription",
    "BelongsTo",
    "CacheStats",
    "CachedStore",
    "Change",
    "EncryptedStore",
    "HasMany",
    "HasOne",
    "HookFailure",
    "KeyRing",
    "MemoryCache",
    "MissingKeyError",
    "ObservedStore",
    "Policy",
    "Principal",
    "RelatedStore",
    "Rules",
    "SecuredStore",
    "ShardedStore",
    "Subscription",
    "cached",
    "encrypted",
    "events",
    "observed",
    "related",
    "relations_of",
    "sealed_model",
    "secured",
    "shard_model",
    "sharded",
]
