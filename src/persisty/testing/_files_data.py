"""The bytes and keys the file store conformance suite writes (plain code shared by its
async and sync flavours)."""

from __future__ import annotations

import hashlib

PNG = b"\x89PNG\r\n\x1a\n" + bytes(100)
BAD_KEYS = [
    "../etc/passwd",
    "/abs",
    "a//b",
    "a\x00b",
    "x" * 1025,
    "",
    "a/./b",
    "a/..",
    "a\\b",
    "a\nb",
    "a/",
]


def payload(size: int, seed: int = 0) -> bytes:
    """``size`` deterministic pseudo-random bytes (the same on every backend)."""
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(f"{seed}:{counter}".encode()).digest()
        counter += 1
    return bytes(out[:size])


# what the same 1 MiB payload must give on every backend
MIB_PAYLOAD_SHA256 = hashlib.sha256(payload(1024 * 1024)).hexdigest()
