"""HMAC-signed tokens for the grants and download URLs that hosted backends (memory, chunks,
directory) issue and check themselves.

A token is ``base64url(JSON payload) . base64url(HMAC-SHA256(secret, purpose | payload))``;
the payload binds the file store, the key or upload, the etag, the expiry and the principal,
so a server (the HTTP routes) can verify a request with nothing but the file store.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from typing import Any

import msgspec

from persisty.errors import ValidationError


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Signer:
    """Signs and checks tokens under one secret, each bound to a ``purpose``.

    Example::

        signer = Signer(b"secret")
        token = signer.sign("download", {"k": "a.txt", "x": 1700000000})
        signer.verify("download", token)["k"]   # 'a.txt'
    """

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def _mac(self, purpose: str, payload: bytes) -> bytes:
        return hmac.new(self._secret, purpose.encode() + b"|" + payload, hashlib.sha256).digest()

    def mac(self, purpose: str, message: str) -> str:
        """The base64url HMAC-SHA256 of ``message`` for ``purpose`` (for URLs that carry
        their claims in plain query parameters, such as the HTTP routes' ``sig``).

        Example::

            Signer(b"secret").mac("http-download", "docs\na.txt\n1700000000")   # 'q1…'
        """
        return _b64(self._mac(purpose, message.encode()))

    def sign(self, purpose: str, claims: dict[str, Any]) -> str:
        """A token carrying ``claims`` for ``purpose``."""
        payload = msgspec.json.encode(claims)
        return _b64(payload) + "." + _b64(self._mac(purpose, payload))

    def verify(self, purpose: str, token: object) -> dict[str, Any]:
        """The claims of a genuine token for ``purpose``; ``ValidationError`` otherwise."""
        bad = ValidationError("invalid or forged token", field="token")
        bad.code = "invalid_token"
        if not isinstance(token, str) or token.count(".") != 1 or len(token) > 8192:
            raise bad
        body, mac = token.split(".")
        try:
            payload, given = _unb64(body), _unb64(mac)
        except (binascii.Error, ValueError):
            raise bad from None
        if not hmac.compare_digest(given, self._mac(purpose, payload)):
            raise bad
        try:
            claims = msgspec.json.decode(payload)
        except msgspec.DecodeError:
            raise bad from None
        if not isinstance(claims, dict):
            raise bad
        return claims
