"""What every layer factory shares: a sync store gives the sync layer, an async store the
async one, and anything else is the same ``TypeError`` naming the factory."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

import persisty
import persisty.aio
import persisty.layers
from persisty.layers import (
    KeyRing,
    Policy,
    Principal,
    cached,
    encrypted,
    observed,
    related,
    secured,
)
from persisty.model import stored


@stored
class Thing:
    id: str
    body: str = ""


KEYS = KeyRing({"k1": b"\x01" * 32}, current="k1")
FACTORIES: dict[str, Callable[[Any], Any]] = {
    "cached": lambda s: cached(s),
    "secured": lambda s: secured(s, Policy.allow_all(), Principal("ann", {"user"})),
    "encrypted": lambda s: encrypted(s, fields=["body"], keys=KEYS),
    "observed": lambda s: observed(s),
    "related": lambda s: related(s, {}),
}
LAYERS = {
    "cached": ("CachedStore", "AsyncCachedStore"),
    "secured": ("SecuredStore", "AsyncSecuredStore"),
    "encrypted": ("EncryptedStore", "AsyncEncryptedStore"),
    "observed": ("ObservedStore", "AsyncObservedStore"),
    "related": ("RelatedStore", "AsyncRelatedStore"),
}


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_a_layer_is_as_sync_as_its_store(name: str) -> None:
    sync_cls, async_cls = (getattr(persisty.layers, n) for n in LAYERS[name])
    store = persisty.connect("memory://").store(Thing)
    layer = FACTORIES[name](store)
    assert isinstance(layer, sync_cls) and not isinstance(layer, async_cls)
    assert isinstance(layer, persisty.Store)
    astore = persisty.aio.connect("memory://").store(Thing)
    alayer = FACTORIES[name](astore)
    assert isinstance(alayer, async_cls) and not isinstance(alayer, sync_cls)


@pytest.mark.parametrize("name", sorted(FACTORIES))
@pytest.mark.parametrize("wrong", ["memory://", None, object()])
def test_a_non_store_is_a_type_error(name: str, wrong: Any) -> None:
    with pytest.raises(TypeError, match=rf"{name}\(\) wraps a Store, not"):
        FACTORIES[name](wrong)


def test_the_pure_classes_are_one_class_on_both_sides() -> None:
    """Classes without I/O are shared, not generated twice: the sync layer's stats are the
    ``CacheStats`` the package exports."""
    sync_cache = cached(persisty.connect("memory://").store(Thing))
    async_cache = cached(persisty.aio.connect("memory://").store(Thing))
    assert isinstance(sync_cache.stats, persisty.layers.CacheStats)  # type: ignore[attr-defined]
    assert isinstance(async_cache.stats, persisty.layers.CacheStats)  # type: ignore[attr-defined]
