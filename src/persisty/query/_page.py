"""Opaque, tamper-evident page keys: the sort position of a page's last item, signed."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from collections.abc import Sequence
from typing import Any

import msgspec

from persisty.errors import ValidationError
from persisty.model import StoreMeta
from persisty.query._evaluate import Sort


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class PageKeys:
    """Signs and checks page keys with HMAC-SHA256 under one database's secret.

    A page key is bound to its store and its sort, so a key from another store, another
    order or another database (another secret) is rejected with ``ValidationError``.

    Example::

        keys = PageKeys(b"a secret of thirty-two bytes or more")
        meta = meta_of(Note)
        spec = sort_spec(meta, [+F.owner, -F.priority])   # ties broken by the key: id
        token = keys.encode(meta, spec, ("ann", 3, n.id))  # the position after item n
        keys.decode(token, meta, spec)     # ("ann", 3, n.id)
    """

    def __init__(self, secret: bytes | str | None = None) -> None:
        if secret is None:
            secret = os.urandom(32)
        self._secret = secret.encode() if isinstance(secret, str) else secret

    def _sign(self, meta: StoreMeta, spec: Sort, payload: bytes) -> bytes:
        binding = (meta.name + "|" + ",".join(("-" if d else "+") + a for a, d in spec)).encode()
        return hmac.new(self._secret, binding + b"|" + payload, hashlib.sha256).digest()[:16]

    def encode(self, meta: StoreMeta, spec: Sort, values: Sequence[Any]) -> str:
        """The page key for the position ``values`` (one value per term of ``spec``)."""
        payload = msgspec.json.encode(list(values))
        return _b64(payload) + "." + _b64(self._sign(meta, spec, payload))

    def decode(self, token: str, meta: StoreMeta, spec: Sort) -> tuple[Any, ...]:
        """The position in a page key; ``ValidationError`` if forged, foreign or malformed."""
        bad = ValidationError("invalid page key", field="page_key")
        if not isinstance(token, str) or token.count(".") != 1:
            raise bad
        body, sig = token.split(".")
        try:
            payload, signature = _unb64(body), _unb64(sig)
        except ValueError:
            raise bad from None
        if _b64(payload) != body or _b64(signature) != sig:
            raise bad  # a non-canonical spelling of the same bytes is still a changed key
        if not hmac.compare_digest(signature, self._sign(meta, spec, payload)):
            raise bad
        try:
            raw = msgspec.json.decode(payload)
        except msgspec.DecodeError:
            raise bad from None
        if not isinstance(raw, list) or len(raw) != len(spec):
            raise bad
        return tuple(meta.attr(a).coerce(v) for v, (a, _) in zip(raw, spec, strict=True))
