"""The sharding layer: nested parts of big items kept as rows of other stores of the same
database, written atomically with the item (async source, generated sync twin, and
:func:`sharded`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, overload

from persisty.layers._dispatch import is_async
from persisty.layers.sharded._async import AsyncShardedStore
from persisty.layers.sharded._model import shard_model
from persisty.layers.sharded._sync import ShardedStore
from persisty.store import AsyncStore, Store

__all__ = ["AsyncShardedStore", "ShardedStore", "shard_model", "sharded"]


@overload
def sharded(store: AsyncStore[Any], paths: Mapping[str, str]) -> AsyncShardedStore[Any]: ...


@overload
def sharded(store: Store[Any], paths: Mapping[str, str]) -> ShardedStore[Any]: ...


def sharded(store: Any, paths: Mapping[str, str]) -> Any:
    """Wrap ``store`` (sync or async; the store of ``shard_model(cls, paths)``) so the parts
    of each item at ``paths`` (path → shard store name) live in their own stores.

    Example::

        paths = {"visits[]": "patient_visits"}
        patients = sharded(db.store(shard_model(Patient, paths)), paths)
        patients.create(Patient(id="p1", visits=[Visit("a")]))
        assert patients.read_path("p1", "visits[0].notes") == "a"
    """
    if is_async(store, "sharded"):
        return AsyncShardedStore(store, paths)
    return ShardedStore(store, paths)
