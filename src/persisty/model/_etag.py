"""Etags: a short hash of an item's canonical JSON."""

from __future__ import annotations

import binascii
import hashlib
from collections.abc import Sequence
from typing import Any

import msgspec

_ENCODER = msgspec.json.Encoder(order="deterministic")


def etag(item: Any) -> str:
    """The etag of an item: a hash of its canonical stored content.

    Example::

        notes.update(dataclasses.replace(n, title="Hi"), if_match=etag(n))
    """
    return etag_of(_ENCODER.encode(item))


_URLSAFE = bytes.maketrans(b"+/", b"-_")


def etag_of(raw: bytes) -> str:
    """The etag of an item from its canonical JSON (:meth:`StoreMeta.encode`), so a backend
    that encodes the item anyway does not encode it twice."""
    digest = hashlib.blake2b(raw, digest_size=12).digest()
    return binascii.b2a_base64(digest, newline=False).translate(_URLSAFE).decode()


def etags_of(raws: Sequence[bytes]) -> list[str]:
    """:func:`etag_of` of each document: 12-byte digests encode to 16 characters without
    padding, so one base64 pass over all of them, cut every 16, gives the same etags."""
    blake2b = hashlib.blake2b
    digests = b"".join([blake2b(raw, digest_size=12).digest() for raw in raws])
    text = binascii.b2a_base64(digests, newline=False).translate(_URLSAFE).decode()
    return [text[i : i + 16] for i in range(0, len(text), 16)]
