"""Field encryption keys: key rings, key providers and the error for a missing key."""

from __future__ import annotations

import base64
import binascii
import os
import re
from collections.abc import Callable, Mapping

from persisty.errors import PersistyError

KeyProvider = Callable[[str, str | None], tuple[str, bytes]]
"""``provider(path, key_id)`` returns ``(key_id, 32-byte key)``: with ``key_id=None`` the
key new values of ``path`` are sealed with, else the key with that id (``KeyError`` when it
is unknown). ``path`` is the declared path (``"address.city"``, ``"tags[]"``)."""

KEY_ID_FORM = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class MissingKeyError(PersistyError):
    """The key a value was sealed with (or the current key) is not available.

    Example::

        try:
            notes.read(key)
        except MissingKeyError as e:
            print(e.field, e.key_id)
    """

    code = "missing_key"
    status = 500

    def __init__(
        self, message: str, *, field: str | None = None, key_id: str | None = None
    ) -> None:
        super().__init__(message, field=field)
        self.key_id = key_id


def as_key(key_id: str, key: bytes | str) -> bytes:
    if isinstance(key, str):
        try:
            key = base64.urlsafe_b64decode(key + "=" * (-len(key) % 4))
        except (binascii.Error, ValueError) as e:
            raise ValueError(f"key {key_id!r}: not base64") from e
    if not isinstance(key, bytes | bytearray) or len(key) != 32:
        raise ValueError(f"key {key_id!r}: AES-256 needs a 32-byte key")
    return bytes(key)


class KeyRing:
    """Named 256-bit keys; ``current`` seals new values, every key opens old ones.

    ``current`` may be one id for every path or a mapping from path to id (``"*"`` for the
    rest). Keys are 32 bytes, or their urlsafe base64 text. A KeyRing is a key provider: any
    callable ``provider(path, key_id) -> (key_id, key)`` can be passed instead.

    Example::

        keys = KeyRing({"k1": old_key, "k2": new_key}, current="k2")
        secret = encrypted(db.store(Note), fields=["body"], keys=keys)
        secret.reencrypt()          # rewrite values still sealed with k1
    """

    def __init__(
        self, keys: Mapping[str, bytes | str], current: str | Mapping[str, str] | None = None
    ) -> None:
        if not keys:
            raise ValueError("a KeyRing needs at least one key")
        self._keys: dict[str, bytes] = {}
        for kid, key in keys.items():
            if not isinstance(kid, str) or not KEY_ID_FORM.match(kid):
                raise ValueError(f"key id {kid!r}: letters, digits, _ or -, at most 64")
            self._keys[kid] = as_key(kid, key)
        if current is None:
            current = list(self._keys)[-1]
        self._current = {"*": current} if isinstance(current, str) else dict(current)
        for kid in self._current.values():
            if kid not in self._keys:
                raise ValueError(f"current key {kid!r} is not in the ring")

    @staticmethod
    def new_key() -> bytes:
        """A fresh random 256-bit key."""
        return os.urandom(32)

    def key_ids(self, path: str) -> list[str]:
        """Every key id, the current one for ``path`` first."""
        current = self._current.get(path, self._current.get("*"))
        return [k for k in self._keys if k == current] + [k for k in self._keys if k != current]

    def __call__(self, path: str, key_id: str | None) -> tuple[str, bytes]:
        if key_id is None:
            key_id = self._current.get(path, self._current.get("*"))
            if key_id is None:
                raise KeyError(path)
        return key_id, self._keys[key_id]
