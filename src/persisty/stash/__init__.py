"""Stashes: dict-like stores of values by key, with the names and meanings of
zensols.persist, over any persisty database, a directory, a file or a dict, and stackable
(caching, read-through factories, one-shot fills, unions, …). Sync here, async as
``Async…`` (``await stash.get(key)``, ``async for key, value in stash``).

Example::

    from persisty.stash import StoreStash, CacheStash

    stash = CacheStash(StoreStash("sqlite:///cache.db", "reports"))
    stash.dump("2024-05", {"rows": 3})
    stash["2024-05"], "2024-05" in stash, len(stash)
    for key, value in stash: ...
"""

from persisty.stash._async.backing import AsyncDictionaryStash, AsyncDirectoryStash
from persisty.stash._async.base import AsyncDelegateStash, AsyncReadOnlyStash, AsyncStash
from persisty.stash._async.caching import AsyncCacheStash, AsyncLRUCacheStash
from persisty.stash._async.counted import commit_counted as commit_counted_async
from persisty.stash._async.filling import (
    AsyncIncrementKeyDirectoryStash,
    AsyncIncrementKeyStash,
    AsyncOneShotFactoryStash,
    AsyncProtectiveStash,
)
from persisty.stash._async.stacked import (
    AsyncFactoryStash,
    AsyncKeyLimitStash,
    AsyncKeySubsetStash,
    AsyncPreemptiveStash,
    AsyncPrimeableStash,
    AsyncSortedStash,
    AsyncUnionStash,
)
from persisty.stash._async.store import AsyncShelveStash, AsyncStoreItemStash, AsyncStoreStash
from persisty.stash._codec import MISSING, Codec
from persisty.stash._multi import AsyncMultiProcessStash, MultiProcessStash
from persisty.stash._protocol import StashedError
from persisty.stash._sync.backing import DictionaryStash, DirectoryStash
from persisty.stash._sync.base import DelegateStash, ReadOnlyStash, Stash
from persisty.stash._sync.caching import CacheStash, LRUCacheStash
from persisty.stash._sync.counted import commit_counted
from persisty.stash._sync.filling import (
    IncrementKeyDirectoryStash,
    IncrementKeyStash,
    OneShotFactoryStash,
    ProtectiveStash,
)
from persisty.stash._sync.stacked import (
    FactoryStash,
    KeyLimitStash,
    KeySubsetStash,
    PreemptiveStash,
    PrimeableStash,
    SortedStash,
    UnionStash,
)
from persisty.stash._sync.store import ShelveStash, StoreItemStash, StoreStash, shelve

__all__ = [
    "MISSING",
    "AsyncCacheStash",
    "AsyncDelegateStash",
    "AsyncDictionaryStash",
    "AsyncDirectoryStash",
    "AsyncFactoryStash",
    "AsyncIncrementKeyDirectoryStash",
    "AsyncIncrementKeyStash",
    "AsyncKeyLimitStash",
    "AsyncKeySubsetStash",
    "AsyncLRUCacheStash",
    "AsyncMultiProcessStash",
    "AsyncOneShotFactoryStash",
    "AsyncPreemptiveStash",
    "AsyncPrimeableStash",
    "AsyncProtectiveStash",
    "AsyncReadOnlyStash",
    "AsyncShelveStash",
    "AsyncSortedStash",
    "AsyncStash",
    "AsyncStoreItemStash",
    "AsyncStoreStash",
    "AsyncUnionStash",
    "CacheStash",
    "Codec",
    "DelegateStash",
    "DictionaryStash",
    "DirectoryStash",
    "FactoryStash",
    "IncrementKeyDirectoryStash",
    "IncrementKeyStash",
    "KeyLimitStash",
    "KeySubsetStash",
    "LRUCacheStash",
    "MultiProcessStash",
    "OneShotFactoryStash",
    "PreemptiveStash",
    "PrimeableStash",
    "ProtectiveStash",
    "ReadOnlyStash",
    "ShelveStash",
    "SortedStash",
    "Stash",
    "StashedError",
    "StoreItemStash",
    "StoreStash",
    "UnionStash",
    "commit_counted",
    "commit_counted_async",
    "shelve",
]
