"""Opaque, tamper-evident page keys: the sort position of a page's last item, encrypted and
authenticated under the database's secret, bound to the store, namespace and order."""

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

_TAG = 16  # bytes of the synthetic IV (the authentication tag)
_BLOCK = hashlib.sha256().digest_size


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _xor(data: bytes, stream: bytes) -> bytes:
    return (int.from_bytes(data, "big") ^ int.from_bytes(stream[: len(data)], "big")).to_bytes(
        len(data), "big"
    )


class PageKeys:
    """Seals and opens page keys under one database's secret.

    A page key is ``<ciphertext>.<tag>``: the position (the sort values of a page's last
    item) encrypted with a deterministic authenticated cipher (SIV: the tag is
    HMAC-SHA256 over the binding and the position, and seeds an HMAC-SHA256 keystream), so it
    carries no attribute value in clear and any change to it is detected. It is bound to its
    store, its namespace and its sort: a key from another store, namespace, order or database
    (another secret) is rejected with ``ValidationError``.

    The same secret keys :meth:`mac`, which the API uses for ETags.

    Example::

        keys = PageKeys(b"a secret of thirty-two bytes or more", namespace="tenant1")
        meta = meta_of(Note)
        spec = sort_spec(meta, [+F.owner, -F.priority])   # ties broken by the key: id
        token = keys.encode(meta, spec, ("ann", 3, n.id))  # the position after item n
        keys.decode(token, meta, spec)     # ("ann", 3, n.id)
    """

    def __init__(
        self, secret: bytes | str | None = None, *, namespace: str | None = None, database: str = ""
    ) -> None:
        if secret is None:
            secret = os.urandom(32)
        self._secret = secret.encode() if isinstance(secret, str) else secret
        self.namespace = namespace
        self.database = database
        self._derived: tuple[bytes, bytes, bytes] | None = None

    def use_secret(self, secret: bytes | str | PageKeys) -> None:
        """Key from now on with ``secret``, or with the secret of another :class:`PageKeys`
        (a backend that keeps its database's secret installs it once it has read it).

        Example::

            keys = PageKeys(namespace="tenant2")
            keys.use_secret(b"the secret the database keeps, 32 bytes or more")
            keys.use_secret(PageKeys(b"another secret of thirty-two bytes..."))
        """
        if isinstance(secret, PageKeys):
            secret = secret._secret
        self._secret = secret.encode() if isinstance(secret, str) else secret

    @property
    def identity(self) -> str:
        """A short name of this database and namespace (no secret in it), for keys kept
        outside the database, e.g. a shared cache's prefix."""
        db = hashlib.sha256(self.database.encode()).hexdigest()[:12]
        return f"{db}:{self.namespace or '_'}"

    def _keys(self) -> tuple[bytes, bytes]:
        # derived lazily: a backend may install the secret it keeps after construction
        d = self._derived
        if d is None or d[0] != self._secret:
            mac = hmac.new(self._secret, b"persisty page key: tag", hashlib.sha256).digest()
            enc = hmac.new(self._secret, b"persisty page key: stream", hashlib.sha256).digest()
            d = self._derived = (self._secret, mac, enc)
        return d[1], d[2]

    def mac(self, purpose: str, data: bytes) -> bytes:
        """HMAC-SHA256 of ``data`` under a key derived from the secret for ``purpose``.

        Example::

            db.pages.mac("etag", b"...")   # 32 bytes; another database gives others
        """
        key = hmac.new(self._secret, b"persisty mac: " + purpose.encode(), hashlib.sha256)
        return hmac.new(key.digest(), data, hashlib.sha256).digest()

    def _binding(self, meta: StoreMeta, spec: Sort) -> bytes:
        order = ",".join(("-" if d else "+") + a for a, d in spec)
        return msgspec.json.encode([self.namespace or "", meta.name, order])

    @staticmethod
    def _stream(key: bytes, iv: bytes, n: int) -> bytes:
        blocks = [
            hmac.new(key, iv + i.to_bytes(4, "big"), hashlib.sha256).digest()
            for i in range(-(-n // _BLOCK))
        ]
        return b"".join(blocks)

    def encode(self, meta: StoreMeta, spec: Sort, values: Sequence[Any]) -> str:
        """The page key for the position ``values`` (one value per term of ``spec``)."""
        mac_key, enc_key = self._keys()
        payload = msgspec.json.encode(list(values))
        tag = hmac.new(
            mac_key, self._binding(meta, spec) + b"\0" + payload, hashlib.sha256
        ).digest()[:_TAG]
        sealed = _xor(payload, self._stream(enc_key, tag, len(payload)))
        return _b64(sealed) + "." + _b64(tag)

    def decode(self, token: str, meta: StoreMeta, spec: Sort) -> tuple[Any, ...]:
        """The position in a page key; ``ValidationError`` if forged, foreign or malformed."""
        bad = ValidationError("invalid page key", field="page_key")
        if not isinstance(token, str) or token.count(".") != 1 or len(token) > 65536:
            raise bad
        body, sig = token.split(".")
        try:
            sealed, tag = _unb64(body), _unb64(sig)
        except ValueError:
            raise bad from None
        if _b64(sealed) != body or _b64(tag) != sig or len(tag) != _TAG:
            raise bad  # a non-canonical spelling of the same bytes is still a changed key
        mac_key, enc_key = self._keys()
        payload = _xor(sealed, self._stream(enc_key, tag, len(sealed)))
        expected = hmac.new(
            mac_key, self._binding(meta, spec) + b"\0" + payload, hashlib.sha256
        ).digest()[:_TAG]
        if not hmac.compare_digest(tag, expected):
            raise bad
        try:
            raw = msgspec.json.decode(payload)
        except msgspec.DecodeError:
            raise bad from None
        if not isinstance(raw, list) or len(raw) != len(spec):
            raise bad
        return tuple(meta.attr(a).coerce(v) for v, (a, _) in zip(raw, spec, strict=True))
