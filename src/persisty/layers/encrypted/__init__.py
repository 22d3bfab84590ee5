"""The field-encryption layer: chosen attributes stored with authenticated encryption
(AES-GCM, or AES-SIV for the ones searched by equality) under rotating keys (async source,
generated sync twin, and :func:`encrypted`)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, overload

from persisty.layers._dispatch import is_async
from persisty.layers.encrypted._async import AsyncEncryptedStore
from persisty.layers.encrypted._keys import KeyProvider, KeyRing, MissingKeyError
from persisty.layers.encrypted._paths import sealed_model
from persisty.layers.encrypted._sync import EncryptedStore
from persisty.store import AsyncStore, Store

__all__ = [
    "AsyncEncryptedStore",
    "EncryptedStore",
    "KeyProvider",
    "KeyRing",
    "MissingKeyError",
    "encrypted",
    "sealed_model",
]


@overload
def encrypted(
    store: AsyncStore[Any],
    fields: Iterable[str],
    keys: KeyProvider,
    *,
    deterministic: Iterable[str] = (),
    context: str | None = None,
) -> AsyncEncryptedStore[Any]: ...


@overload
def encrypted(
    store: Store[Any],
    fields: Iterable[str],
    keys: KeyProvider,
    *,
    deterministic: Iterable[str] = (),
    context: str | None = None,
) -> EncryptedStore[Any]: ...


def encrypted(
    store: Any,
    fields: Iterable[str],
    keys: KeyProvider,
    *,
    deterministic: Iterable[str] = (),
    context: str | None = None,
) -> Any:
    """Wrap ``store`` (sync or async) so the attributes at ``fields`` are stored encrypted.

    ``keys`` is a :class:`KeyRing` or any callable ``(path, key_id) -> (key_id, key)``.
    Paths written ``"=name"`` (or listed in ``deterministic``) are encrypted with AES-SIV and
    can be searched by equality. ``context`` (default: the store name) is bound into every
    ciphertext.

    Example::

        keys = KeyRing({"k1": key1, "k2": key2}, current="k2")
        secret = encrypted(db.store(Note), fields=["body", "address.city"], keys=keys)
    """
    if is_async(store, "encrypted"):
        return AsyncEncryptedStore(
            store, fields, keys, deterministic=deterministic, context=context
        )
    return EncryptedStore(store, fields, keys, deterministic=deterministic, context=context)
