"""Layers: Stores that wrap a Store and add caching, access control, encryption, sharding or
change events; each is itself a Store (sync or async, like the store it wraps).

Example::

    from persisty.layers import Policy, Principal, cached, secured

    notes = cached(db.store(Note), ttl=timedelta(seconds=30))
    mine = secured(notes, Policy.owner("owner"), Principal("ann", scopes={"user"}))
"""

from persisty.layers._async.cache import AsyncCachedStore, AsyncMemoryCache, CacheStats
from persisty.layers._async.encrypted import AsyncEncryptedStore
from persisty.layers._async.events import AsyncObservedStore, AsyncSubscription
from persisty.layers._async.relations import AsyncRelatedStore
from persisty.layers._async.secured import AsyncSecuredStore
from persisty.layers._cache import cached
from persisty.layers._changes import Change, HookFailure
from persisty.layers._crypto import KeyRing, MissingKeyError, sealed_model
from persisty.layers._encryption import encrypted
from persisty.layers._observe import events, observed
from persisty.layers._policy import Policy, Principal, Rules, secured
from persisty.layers._relate import related
from persisty.layers._sync.cache import CachedStore, MemoryCache
from persisty.layers._sync.encrypted import EncryptedStore
from persisty.layers._sync.events import ObservedStore, Subscription
from persisty.layers._sync.relations import RelatedStore
from persisty.layers._sync.secured import SecuredStore
from persisty.model._relations import BelongsTo, HasMany, HasOne, relations_of

__all__ = [
    "AsyncCachedStore",
    "AsyncEncryptedStore",
    "AsyncMemoryCache",
    "AsyncObservedStore",
    "AsyncRelatedStore",
    "AsyncSecuredStore",
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
    "Subscription",
    "cached",
    "encrypted",
    "events",
    "observed",
    "related",
    "relations_of",
    "sealed_model",
    "secured",
]
