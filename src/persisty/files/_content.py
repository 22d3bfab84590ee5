"""Content types, sniffing, user metadata and the streaming SHA-256 of a file store's
bytes (plain sync code shared by the async store and its generated sync twin)."""

from __future__ import annotations

import hashlib
import mimetypes
import os
import re
from concurrent.futures import Future, ThreadPoolExecutor

from persisty.errors import ValidationError
from persisty.files._model import DEFAULT_CONTENT_TYPE, SNIFF_BYTES, Limits, invalid

# ---- content types and sniffing --------------------------------------------------------

_SIGNATURES: list[tuple[str, bytes, int]] = [
    ("image/png", b"\x89PNG\r\n\x1a\n", 0),
    ("image/jpeg", b"\xff\xd8\xff", 0),
    ("image/gif", b"GIF87a", 0),
    ("image/gif", b"GIF89a", 0),
    ("image/webp", b"WEBP", 8),
    ("image/bmp", b"BM", 0),
    ("image/tiff", b"II*\x00", 0),
    ("image/tiff", b"MM\x00*", 0),
    ("application/pdf", b"%PDF-", 0),
    ("application/zip", b"PK\x03\x04", 0),
    ("application/gzip", b"\x1f\x8b", 0),
    ("audio/mpeg", b"ID3", 0),
    ("audio/ogg", b"OggS", 0),
    ("audio/wav", b"WAVE", 8),
    ("video/mp4", b"ftyp", 4),
    ("video/webm", b"\x1a\x45\xdf\xa3", 0),
]
_KNOWN = {t for t, _, _ in _SIGNATURES}
_ALIASES = {
    "image/jpg": "image/jpeg",
    "application/x-zip-compressed": "application/zip",
    "application/x-gzip": "application/gzip",
    "audio/x-wav": "audio/wav",
    "audio/mp3": "audio/mpeg",
}


def sniff(head: bytes) -> str | None:
    """The content type the first bytes of a file show, when persisty knows its signature.

    Example::

        assert sniff(b"\\x89PNG\\r\\n\\x1a\\n" + bytes(24)) == "image/png"
        assert sniff(b"hello") is None
    """
    for content_type, magic, offset in _SIGNATURES:
        if head[offset : offset + len(magic)] == magic and (offset != 8 or head[:4] == b"RIFF"):
            return content_type
    return None


def base_type(content_type: str) -> str:
    """``content_type`` without parameters, lowercased, aliases resolved."""
    t = content_type.split(";")[0].strip().lower()
    return _ALIASES.get(t, t)


def guess_type(key: str, filename: str | None) -> str | None:
    """The type a file name's extension suggests."""
    for name in (filename, key):
        if name:
            guessed, _ = mimetypes.guess_type(os.path.basename(name), strict=False)
            if guessed:
                return guessed
    return None


def decide_type(
    declared: str | None, head: bytes, key: str, filename: str | None, limits: Limits
) -> str:
    """The content type recorded for a file whose first bytes are ``head``.

    A declared type wins, but with ``limits.sniff`` a type whose signature persisty knows
    must match the bytes (``content_type_mismatch``); undeclared, the sniffed type, else the
    extension's, else ``application/octet-stream``. Then ``limits.content_types`` applies.
    """
    sniffed = sniff(head)
    if declared is not None:
        check_content_type(declared)
        chosen = declared
        if limits.sniff:
            claimed = base_type(declared)
            if (claimed in _KNOWN or sniffed is not None) and sniffed != claimed:
                raise invalid(
                    "content_type_mismatch",
                    f"the bytes are {sniffed or 'not of a known type'}, not {claimed}",
                    field="content_type",
                )
    else:
        chosen = (
            (sniffed if limits.sniff else None) or guess_type(key, filename) or DEFAULT_CONTENT_TYPE
        )
    limits.check_type(chosen)
    return chosen


_TYPE = re.compile(
    r"^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*"
    r"(\s*;\s*[A-Za-z0-9!#$&^_.+-]+=(\"[^\"\r\n]*\"|[A-Za-z0-9!#$&^_.+-]+))*$"
)


def check_content_type(content_type: object) -> str:
    """``content_type`` if it is a well-formed media type (``type/subtype; k=v``)."""
    if (
        not isinstance(content_type, str)
        or len(content_type) > 255
        or not _TYPE.match(content_type)
    ):
        raise ValidationError(f"invalid content type {content_type!r}", field="content_type")
    return content_type


def check_metadata(metadata: object) -> dict[str, str]:
    """User metadata: at most 64 string pairs, keys of at most 128 characters."""
    if metadata is None:
        return {}
    if (
        not isinstance(metadata, dict)
        or len(metadata) > 64
        or not all(
            isinstance(k, str) and isinstance(v, str) and 0 < len(k) <= 128 and len(v) <= 2048
            for k, v in metadata.items()
        )
    ):
        raise ValidationError("metadata is a dict of at most 64 str -> str pairs", field="metadata")
    return dict(metadata)


_HASHERS = ThreadPoolExecutor(max_workers=4, thread_name_prefix="persisty-sha256")
PARALLEL_HASH_FROM = 256 * 1024


class Digest:
    """Counts, hashes and keeps the first bytes of a stream as it passes by.

    ``limit`` (bytes) raises ``file_too_large`` as soon as the stream passes it, so an
    oversized upload is refused before it is all written. Large pieces are hashed on a
    worker thread (hashlib releases the GIL) while the caller writes them, one piece at a
    time in order, so hashing and writing overlap instead of adding up.
    """

    __slots__ = ("_pending", "_sha", "head", "limit", "size")

    def __init__(self, limit: int | None = None) -> None:
        self._sha = hashlib.sha256()
        self._pending: Future[None] | None = None
        self.size = 0
        self.head = b""
        self.limit = limit

    def add(self, piece: bytes) -> None:
        """Account for the next piece of the stream."""
        self.size += len(piece)
        if self.limit is not None and self.size > self.limit:
            raise invalid(
                "file_too_large", f"the file is larger than {self.limit} bytes", field="size"
            )
        if len(self.head) < SNIFF_BYTES:
            self.head = (self.head + piece[:SNIFF_BYTES])[:SNIFF_BYTES]
        if self._pending is not None:
            self._pending.result()
            self._pending = None
        if len(piece) >= PARALLEL_HASH_FROM:
            self._pending = _HASHERS.submit(self._sha.update, piece)
        else:
            self._sha.update(piece)

    def hexdigest(self) -> str:
        """SHA-256 hex of what passed."""
        if self._pending is not None:
            self._pending.result()
            self._pending = None
        return self._sha.hexdigest()


def check_sha256(value: object, field: str = "sha256") -> str | None:
    """A SHA-256 given as 64 hex digits (lowercased), or ``None``."""
    if value is None:
        return None
    if not isinstance(value, str) or not re.fullmatch(r"[0-9a-fA-F]{64}", value):
        raise ValidationError("a SHA-256 is 64 hex digits", field=field)
    return value.lower()
