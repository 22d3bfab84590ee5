"""How stashes turn values into bytes and keys into file names (plain code, shared by the
sync and async stashes).

``json`` (the default) and ``msgpack`` are msgspec; ``pickle`` is only used when asked for,
and then every blob carries an HMAC-SHA256 tag that is verified before anything is unpickled
(pickle runs code on load, so an unauthenticated blob is never loaded).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import pickle  # only behind an HMAC check, and only when codec="pickle"
import re
from typing import Any, Final, Literal
from urllib.parse import quote, unquote

import msgspec

from persisty.errors import IntegrityError, ValidationError

CodecName = Literal["json", "msgpack", "pickle"]
CODECS: Final = ("json", "msgpack", "pickle")


class _Missing:
    """The private sentinel for "no value stored" (``None`` is a value in a stash)."""

    _instance: _Missing | None = None

    def __new__(cls) -> _Missing:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "<missing>"

    def __bool__(self) -> bool:
        return False

    def __reduce__(self) -> str:
        return "MISSING"


MISSING: Final[Any] = _Missing()
"""What a stash's internal lookup returns for a key that holds no value."""

_PICKLE_TAG = b"PSP1"
_MAC_SIZE = 32


class Codec:
    """Encodes stash values to bytes and back.

    Example::

        codec = Codec("msgpack")
        codec.decode(codec.encode({"a": [1, 2]})) == {"a": [1, 2]}
    """

    def __init__(
        self, name: str = "json", *, secret: bytes | str | None = None, type: Any = Any
    ) -> None:
        if name not in CODECS:
            raise ValidationError(
                f"codec must be one of {', '.join(CODECS)}, not {name!r}", field="codec"
            )
        self.name = name
        self.type = type
        self._key: bytes | None = None
        if name == "json":
            self._enc: Any = msgspec.json.Encoder()
            self._dec: Any = msgspec.json.Decoder(type)
        elif name == "msgpack":
            self._enc = msgspec.msgpack.Encoder()
            self._dec = msgspec.msgpack.Decoder(type)
        else:
            secret = secret or os.environ.get("PERSISTY_SECRET")
            if not secret:
                raise ValidationError(
                    "codec='pickle' needs a secret to sign the blobs "
                    "(secret=... or PERSISTY_SECRET)",
                    field="secret",
                )
            raw = secret.encode() if isinstance(secret, str) else secret
            # a key of its own, so a pickle tag never equals a page-key signature
            self._key = hmac.new(raw, b"persisty-stash-pickle", hashlib.sha256).digest()

    def encode(self, value: Any) -> bytes:
        """The bytes of ``value``; a value the codec cannot encode is a ValidationError."""
        if self._key is not None:
            payload = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
            return _PICKLE_TAG + hmac.new(self._key, payload, hashlib.sha256).digest() + payload
        try:
            return self._enc.encode(value)  # type: ignore[no-any-return]
        except (TypeError, msgspec.EncodeError, OverflowError) as e:
            raise ValidationError(
                f"the {self.name} codec cannot encode a "
                f"{type(value).__name__}: {e} (codec='pickle' can)",
                field="value",
            ) from e

    def decode(self, data: bytes) -> Any:
        """The value of ``data``; a pickle blob whose tag does not verify is refused
        (``IntegrityError``) before it is unpickled."""
        if self._key is not None:
            head, mac = (
                data[: len(_PICKLE_TAG)],
                data[len(_PICKLE_TAG) : len(_PICKLE_TAG) + _MAC_SIZE],
            )
            payload = data[len(_PICKLE_TAG) + _MAC_SIZE :]
            good = hmac.new(self._key, payload, hashlib.sha256).digest()
            if head != _PICKLE_TAG or not hmac.compare_digest(mac, good):
                raise IntegrityError(
                    "a pickled stash value failed its signature check "
                    "(tampered, or written under another secret); "
                    "it was not unpickled"
                )
            return pickle.loads(payload)  # noqa: S301
        try:
            return self._dec.decode(data)
        except (msgspec.DecodeError, msgspec.ValidationError) as e:
            raise IntegrityError(f"a stored value is not valid {self.name}: {e}") from e


def check_key(key: Any) -> str:
    """A stash key as a string: strings pass, integers become their decimal text (zensols
    stashes use them), anything else is a ValidationError naming ``key``."""
    if isinstance(key, str):
        return key
    if isinstance(key, int) and not isinstance(key, bool):
        return str(key)
    raise ValidationError(f"a stash key is a string, not {type(key).__name__}", field="key")


_SAFE = re.compile(r"[A-Za-z0-9_\-][A-Za-z0-9_\-.]*")
_MAX_NAME = 200


def key_to_filename(key: str) -> str:
    """A file name for ``key`` that cannot leave its directory: every character but
    letters, digits, ``_``, ``-`` and a non-leading ``.`` is percent-encoded (so ``/``,
    ``..``, ``%`` and NUL never reach the file system), and the mapping is reversible."""
    if _SAFE.fullmatch(key):
        name = key
    else:
        name = quote(key, safe="")
        if name.startswith("."):
            name = "%2E" + name[1:]
        name = name or "%"  # the empty key; "%" alone never comes out of quote()
    if len(name.encode()) > _MAX_NAME:
        raise ValidationError(
            f"a key of this directory stash encodes to at most {_MAX_NAME} bytes of file name",
            field="key",
        )
    return name


def filename_to_key(name: str) -> str:
    """The key :func:`key_to_filename` encoded as ``name``."""
    return "" if name == "%" else unquote(name)
