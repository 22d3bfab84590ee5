"""Value codecs (JSON by default, pickle only when asked for) and encryption keys."""

from __future__ import annotations

import base64
import binascii
import hashlib
import pickle  # only behind the explicit codec="pickle" opt-in
from collections.abc import Callable
from typing import Any, Protocol

import msgspec

from persisty.errors import ValidationError
from persisty.layers import KeyRing


class Codec(Protocol):
    """Turns a value into text and back. ``encode`` raises ``ValidationError`` for a value
    it cannot hold."""

    name: str

    def encode(self, value: Any) -> str: ...

    def decode(self, text: str) -> Any: ...


class JsonCodec:
    """JSON through msgspec: ``None``, bools, numbers, strings, lists and dicts round-trip
    (tuples come back as lists)."""

    name = "json"

    def __init__(self) -> None:
        self._encoder = msgspec.json.Encoder()
        self._decoder = msgspec.json.Decoder()

    def encode(self, value: Any) -> str:
        try:
            return self._encoder.encode(value).decode()
        except (TypeError, ValueError, OverflowError) as e:
            raise ValidationError(f"value cannot be stored as JSON: {e}", field="value") from e

    def decode(self, text: str) -> Any:
        return self._decoder.decode(text)

    def encode_many(self, values: list[Any]) -> list[str]:
        """:meth:`encode` of each value, in one encoder call (JSON never holds a raw
        newline, so the lines split exactly)."""
        try:
            texts = self._encoder.encode_lines(values).decode().split("\n")
        except (TypeError, ValueError, OverflowError):
            return [self.encode(v) for v in values]  # (names the value that failed)
        texts.pop()
        return texts


def encode_many(codec: Codec, values: list[Any]) -> list[str]:
    """``codec.encode`` of each value, in one call where the codec has a batch form."""
    many = getattr(codec, "encode_many", None)
    if many is not None:
        return many(values)  # type: ignore[no-any-return]
    return [codec.encode(v) for v in values]


class PickleCodec:
    """Pickle, base64 in the stored text. Unpickling runs code chosen by whoever wrote the
    data: use it only for data you trust (it is never a default)."""

    name = "pickle"

    def encode(self, value: Any) -> str:
        try:
            return base64.b64encode(pickle.dumps(value, protocol=4)).decode()
        except (pickle.PicklingError, TypeError, AttributeError) as e:
            raise ValidationError(f"value cannot be pickled: {e}", field="value") from e

    def decode(self, text: str) -> Any:
        return pickle.loads(base64.b64decode(text))  # noqa: S301


class FunctionCodec:
    """A codec from two functions (``dumps``, ``loads``), e.g. ``(json.dumps, json.loads)``;
    ``dumps`` may return text or bytes (kept as base64 behind a ``b:`` marker)."""

    name = "custom"

    def __init__(self, dumps: Callable[[Any], str | bytes], loads: Callable[[Any], Any]) -> None:
        self.dumps = dumps
        self.loads = loads

    def encode(self, value: Any) -> str:
        try:
            data = self.dumps(value)
        except (TypeError, ValueError, OverflowError) as e:
            raise ValidationError(f"the codec cannot encode the value: {e}", field="value") from e
        if isinstance(data, bytes | bytearray):
            return "b:" + base64.b64encode(bytes(data)).decode()
        if not isinstance(data, str):
            raise ValidationError("a codec's dumps must return str or bytes", field="codec")
        return "s:" + data

    def decode(self, text: str) -> Any:
        if text.startswith("b:"):
            return self.loads(base64.b64decode(text[2:]))
        return self.loads(text[2:] if text.startswith("s:") else text)


def make_codec(codec: Any) -> Codec:
    """``"json"`` (the default), ``"pickle"`` (explicit opt-in), an object with
    ``encode``/``decode``, or a ``(dumps, loads)`` pair."""
    if codec is None or codec == "json":
        return JsonCodec()
    if codec == "pickle":
        return PickleCodec()
    if isinstance(codec, tuple) and len(codec) == 2 and all(callable(f) for f in codec):
        return FunctionCodec(codec[0], codec[1])
    if callable(getattr(codec, "encode", None)) and callable(getattr(codec, "decode", None)):
        if not hasattr(codec, "name"):
            codec.name = type(codec).__name__
        return codec  # type: ignore[no-any-return]
    raise ValidationError(
        f"unknown codec {codec!r}: 'json', 'pickle', (dumps, loads) or an "
        "object with encode/decode",
        field="codec",
    )


def make_keys(keys: Any) -> Any:
    """A key provider from ``keys``: a :class:`KeyRing` (or any provider callable), or one
    key (32 bytes, or its urlsafe base64 text as a Fernet key is) whose id is derived from
    it, so values sealed under one single key are never opened with another."""
    if (
        keys is None
        or isinstance(keys, KeyRing)
        or (callable(keys) and not isinstance(keys, bytes | str))
    ):
        return keys
    raw = keys
    if isinstance(raw, str):
        raw = raw.encode()
    if isinstance(raw, bytes | bytearray) and len(raw) != 32:
        try:
            raw = base64.urlsafe_b64decode(bytes(raw) + b"=" * (-len(raw) % 4))
        except (binascii.Error, ValueError):
            raise ValidationError(
                "key: 32 bytes or their urlsafe base64 text", field="keys"
            ) from None
    if not isinstance(raw, bytes | bytearray) or len(raw) != 32:
        raise ValidationError(
            "key: AES-256 needs 32 bytes (or their urlsafe base64 text)", field="keys"
        )
    kid = "k" + hashlib.sha256(b"persisty.kv key id\x00" + bytes(raw)).hexdigest()[:12]
    return KeyRing({kid: bytes(raw)}, current=kid)
