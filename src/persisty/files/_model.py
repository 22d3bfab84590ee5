"""The records of a file store and the rules on their values: keys, limits, ranges, sniffing.

Everything here is plain sync code shared by the async store and its generated sync twin.
The catalog, blob, chunk and upload records are ordinary ``@stored`` items, so they live in
any persisty database and every layer applies to them.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import hashlib
import re
import secrets
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from persisty.errors import ValidationError
from persisty.model import Attr, Index, stored

MAX_KEY_BYTES = 1024
SNIFF_BYTES = 4096
DEFAULT_CHUNK_SIZE = 256 * 1024
DEFAULT_CONTENT_TYPE = "application/octet-stream"
_STORE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\\]")


@stored(indexes=[Index("store"), Index("blob")])
class FileInfo:
    """One file in a file store's catalog.

    ``etag`` is the SHA-256 hex of the file's bytes on every backend; ``blob`` names the
    immutable blob holding them (a copy shares it); ``id`` is the catalog key (a hash of the
    file store's name and ``key``, so keys of any length fit every engine).

    Example::

        info = files.put("docs/a.txt", b"hello")
        info.size, info.etag, info.content_type   # 5, '2cf24d…', 'text/plain'
    """

    id: str
    store: str
    key: str
    blob: str
    size: int
    content_type: str
    etag: str
    created_at: datetime
    updated_at: datetime
    owner: str | None = None
    filename: str | None = None
    metadata: dict[str, str] = Attr(default_factory=dict)


@stored(indexes=[Index("store")])
class FileBlob:
    """A blob held as chunks in a database (written before its chunks, deleted after)."""

    id: str
    store: str
    chunk_size: int
    created_at: datetime
    size: int | None = None  # set once every chunk is written


@stored(indexes=[Index("blob")])
class FileChunk:
    """Bytes ``[index * chunk_size, (index + 1) * chunk_size)`` of a blob."""

    id: str
    blob: str
    index: int
    data: bytes


@stored(indexes=[Index("blob")])
class FileChunkData:
    """Chunk ``index`` of a blob in a SQL database: its bytes are the raw ``data`` column
    of the row, which the file store writes and reads by SQL of its own; the item itself
    (what the store's read answers) carries ``size`` and no ``data``."""

    id: str
    blob: str
    index: int
    size: int
    data: bytes | None = None


@stored(indexes=[Index("store")])
class FileUpload:
    """A pending (or completed) upload granted by ``upload_grant``."""

    id: str
    store: str
    key: str
    size: int
    content_type: str
    staging: str
    expires_at: datetime
    created_at: datetime
    sha256: str | None = None
    part_size: int | None = None
    multipart_id: str | None = None
    owner: str | None = None
    filename: str | None = None
    metadata: dict[str, str] = Attr(default_factory=dict)
    state: str = "pending"
    result_etag: str | None = None


@stored
class FileSecret:
    """The HMAC secret a file store signs its grants and URLs with (kept in its database)."""

    id: str
    secret: str


@dataclasses.dataclass(frozen=True, slots=True)
class Limits:
    """What a file store accepts, and how long its URLs and grants live.

    ``content_types`` are patterns (``"image/*"``); ``None`` allows every type. With
    ``sniff`` the first bytes must agree with the declared type when persisty knows the
    type's signature. ``url_ttl``/``grant_ttl`` are the default lifetimes in seconds.

    Example::

        Limits(max_size=5_000_000, content_types=["image/png", "image/jpeg"])
    """

    max_size: int | None = None
    min_size: int = 0
    content_types: Sequence[str] | None = None
    sniff: bool = True
    url_ttl: float = 3600.0
    grant_ttl: float = 3600.0

    def check_type(self, content_type: str) -> None:
        """``content_type_not_allowed`` unless ``content_type`` matches a pattern."""
        if self.content_types is None:
            return
        base = content_type.split(";")[0].strip().lower()
        if not any(fnmatch.fnmatchcase(base, p.lower()) for p in self.content_types):
            raise invalid(
                "content_type_not_allowed",
                f"content type {base!r} is not allowed (allowed: {', '.join(self.content_types)})",
                field="content_type",
            )

    def check_size(self, size: int, *, final: bool = True) -> None:
        """``file_too_large`` / ``file_too_small`` (the latter only for a final size)."""
        if self.max_size is not None and size > self.max_size:
            raise invalid(
                "file_too_large", f"the file is larger than {self.max_size} bytes", field="size"
            )
        if final and size < self.min_size:
            raise invalid(
                "file_too_small", f"the file is smaller than {self.min_size} bytes", field="size"
            )


@dataclasses.dataclass(frozen=True, slots=True)
class UploadPart:
    """One part of a multipart grant: PUT its bytes to ``url``, keep the ETag answered."""

    part_number: int
    url: str
    size: int


@dataclasses.dataclass(frozen=True, slots=True)
class UploadGrant:
    """How a client (a browser) uploads a file without going through the application.

    A form grant: POST ``fields`` plus the file (as the last field, named ``file``) to
    ``url`` as ``multipart/form-data``. A multipart grant: PUT each part's bytes to its
    ``url`` and pass the collected ``{"part_number", "etag"}`` to ``complete_upload``.

    Example::

        grant = files.upload_grant("avatars/ann.png", size=n, content_type="image/png")
        # browser: POST grant.fields + file to grant.url
        # ... then, once it has: files.complete_upload(grant.upload_id)
    """

    upload_id: str
    key: str
    url: str
    fields: dict[str, str]
    parts: list[UploadPart]
    expires_at: datetime
    method: str = "POST"


@dataclasses.dataclass(frozen=True, slots=True)
class FsckProblem:
    """A catalog record whose blob is missing or damaged."""

    key: str
    blob: str
    problem: str  # "missing_blob" | "digest_mismatch" | "size_mismatch"
    detail: str = ""


@dataclasses.dataclass(slots=True)
class FsckReport:
    """What ``fsck()`` found: damaged files, unreferenced blobs, expired upload grants."""

    checked: int = 0
    problems: list[FsckProblem] = dataclasses.field(default_factory=list)
    orphans: list[str] = dataclasses.field(default_factory=list)
    expired_uploads: list[str] = dataclasses.field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No damaged file (orphans and expired grants are gc's business)."""
        return not self.problems


@dataclasses.dataclass(slots=True)
class GcReport:
    """What ``gc()`` removed."""

    blobs: list[str] = dataclasses.field(default_factory=list)
    uploads: list[str] = dataclasses.field(default_factory=list)


# ---- keys ----------------------------------------------------------------------------


def invalid(code: str, message: str, *, field: str) -> ValidationError:
    """A ``ValidationError`` with a file-specific ``code`` (``invalid_key``, ``file_too_large``,
    ``content_type_mismatch`` …) naming ``field``."""
    error = ValidationError(message, field=field)
    error.code = code
    return error


def check_key(key: object, field: str = "key") -> str:
    """``key`` if it is a valid file key, else ``ValidationError`` with code ``invalid_key``.

    A key is UTF-8 of at most 1,024 bytes, ``/``-separated, with no empty, ``.`` or ``..``
    segment, no leading ``/``, and no NUL, control character or backslash.

    Example::

        from persisty.errors import ValidationError

        assert check_key("docs/a.txt") == "docs/a.txt"
        try:
            check_key("../etc/passwd")
        except ValidationError as e:
            assert e.code == "invalid_key"
    """

    def bad(why: str) -> ValidationError:
        return invalid("invalid_key", f"invalid file key {key!r}: {why}", field=field)

    if not isinstance(key, str):
        raise bad("a key is a string")
    try:
        size = len(key.encode("utf-8"))
    except UnicodeEncodeError:
        raise bad("not valid UTF-8") from None
    if size == 0:
        raise bad("empty")
    if size > MAX_KEY_BYTES:
        raise bad(f"longer than {MAX_KEY_BYTES} bytes")
    if _CONTROL.search(key):
        raise bad("NUL, control characters and backslashes are not allowed")
    if key.startswith("/"):
        raise bad("a key does not start with '/'")
    for segment in key.split("/"):
        if segment in ("", ".", ".."):
            raise bad("empty, '.' and '..' segments are not allowed")
    return key


def check_prefix(prefix: object) -> str:
    """A listing or grant prefix: empty, or a key (optionally ending with ``/``)."""
    if prefix == "":
        return ""
    if not isinstance(prefix, str):
        raise invalid("invalid_key", "a prefix is a string", field="prefix")
    check_key(prefix[:-1] if prefix.endswith("/") else prefix, field="prefix")
    return prefix


def check_store_name(name: str) -> str:
    """A file store's name: lowercase letters, digits and ``_``, starting with a letter."""
    if not isinstance(name, str) or not _STORE_NAME.match(name):
        raise ValidationError(
            "a file store name is a lowercase letter then lowercase "
            "letters, digits or _ (at most 40)",
            field="name",
        )
    return name


def catalog_id(store: str, key: str) -> str:
    """The catalog key of ``key`` in file store ``store`` (fixed length on every engine)."""
    return hashlib.sha256(f"{store}\x00{key}".encode()).hexdigest()[:40]


# ---- blob ids ------------------------------------------------------------------------


def new_blob_id() -> str:
    """A fresh blob id: 16 hex digits of nanoseconds since the epoch, then 16 random ones,
    so a blob's age is read from its id (``gc`` needs no clock on the blob)."""
    return f"{time.time_ns():016x}{secrets.token_hex(8)}"


def blob_time(blob_id: str) -> datetime:
    """When the blob named ``blob_id`` was started (the epoch for a foreign name)."""
    try:
        return datetime.fromtimestamp(int(blob_id[:16], 16) / 1e9, UTC)
    except ValueError:
        return datetime.fromtimestamp(0, UTC)


def seconds(value: float | timedelta | None, default: float) -> float:
    """Seconds from a number of seconds or a ``timedelta`` (``default`` for ``None``)."""
    if value is None:
        return default
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ValidationError(
            "a duration is a number of seconds or a timedelta", field="expires_in"
        )
    return float(value)


# ---- ranges ----------------------------------------------------------------------------


def resolve_range(size: int, start: int = 0, end: int | None = None) -> tuple[int, int]:
    """The half-open byte range ``[start, end)`` of a file of ``size`` bytes.

    A negative ``start`` (or ``end``) counts from the end; ``end`` past the size is
    clamped. ``invalid_range`` when ``start`` is past the end or after ``end``.

    Example::

        resolve_range(100, -10)      # (90, 100): the last 10 bytes
        resolve_range(100, 5, 10)    # (5, 10)
    """
    if (
        not isinstance(start, int)
        or isinstance(start, bool)
        or (end is not None and (not isinstance(end, int) or isinstance(end, bool)))
    ):
        raise invalid("invalid_range", "range bounds are integers", field="range")
    s = max(0, size + start) if start < 0 else start
    e = size if end is None else (max(0, size + end) if end < 0 else min(end, size))
    if s > size or s > e:
        raise invalid(
            "invalid_range",
            f"range [{start}, {end}) is outside a file of {size} bytes",
            field="range",
        )
    return s, e


def now_utc() -> datetime:
    """The current time in UTC (the default clock)."""
    return datetime.now(UTC)
