"""``encrypted(store, fields=..., keys=...)``: the field-encryption layer for a sync or an
async store (sync-only entry point; the layers are in ``_async/encrypted.py`` and its twin)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, overload

from persisty.layers._async.encrypted import AsyncEncryptedStore
from persisty.layers._crypto import KeyProvider
from persisty.layers._sync.encrypted import EncryptedStore
from persisty.store import AsyncStore, Store


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
    if isinstance(store, AsyncStore):
        return AsyncEncryptedStore(
            store, fields, keys, deterministic=deterministic, context=context
        )
    if isinstance(store, Store):
        return EncryptedStore(store, fields, keys, deterministic=deterministic, context=context)
    raise TypeError(f"encrypted() wraps a Store, not {type(store).__name__}")
