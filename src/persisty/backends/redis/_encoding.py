"""Order-preserving byte encodings of attribute values for Redis lexicographic sorted sets.

Every indexed value becomes a *component*: a tag byte followed by a payload, such that
comparing two components byte by byte (as ``ZRANGEBYLEX`` does) orders them exactly as
persisty's reference semantics order the values: ``None`` first, numbers by value (ints,
floats and decimals exactly, without the 2**53 limit of sorted-set scores), strings by code
point, datetimes by instant, dates, UUIDs and bytes by value, enums by their value.

Components are self-delimiting and no component is a prefix of another, so a member made of
several components followed by the raw key string sorts by the first component, then the
second, and so on; ``split`` walks them back apart. No component contains ``0xff`` in a
position where a new component could start, so ``prefix + b"\\xff"`` is an exclusive upper
bound of everything that starts with a complete ``prefix``.
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from decimal import Decimal
from typing import Any

NONE = b"\x01"
NON_NONE = b"\x02"  # lower bound of every non-None component
FALSE = b"\x10"
TRUE = b"\x11"
NEG_INF = b"\x20"
NEG = 0x21
ZERO = b"\x22"
POS = 0x23
POS_INF = b"\x24"
NAN = b"\x25"
STR = 0x30
BYTES = 0x31
DATETIME = 0x40
DATE = 0x41
UUID = 0x42
TOP = b"\xff"

_EPOCH = dt.datetime(1, 1, 1, tzinfo=dt.UTC)
_MICRO = dt.timedelta(microseconds=1)
_BIAS = 1 << 31
_NEG_DIGITS = bytes.maketrans(b"0123456789", b"9876543210")


def _escape(raw: bytes) -> bytes:
    return raw.replace(b"\x00", b"\x00\xff")


_STR_TAG = bytes((STR,))
_POS_TAG = bytes((POS,))
_NEG_TAG = bytes((NEG,))


def encode_str(value: str) -> bytes:
    """The component of a string (without its terminator when used as a prefix)."""
    return (
        _STR_TAG + value.encode("utf-8", "surrogatepass").replace(b"\x00", b"\x00\xff") + (b"\x00")
    )


def str_prefix(value: str) -> bytes:
    """The bytes every component of a string starting with ``value`` starts with."""
    return bytes((STR,)) + _escape(value.encode("utf-8", "surrogatepass"))


def _number(value: Decimal) -> bytes:
    if value.is_nan():
        return NAN
    if value.is_infinite():
        return NEG_INF if value < 0 else POS_INF
    if not value:
        return ZERO
    sign, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)
    text = "".join(map(str, digits)).rstrip("0")
    stripped = len(digits) - len(text)
    adjusted = exponent + stripped + len(text) - 1
    if not -_BIAS < adjusted < _BIAS:
        raise ValueError("number out of the indexable range")
    raw = text.encode()
    if sign:
        return (
            bytes((NEG,))
            + (_BIAS - adjusted).to_bytes(4, "big")
            + raw.translate(_NEG_DIGITS)
            + b"~"
        )
    return bytes((POS,)) + (_BIAS + adjusted).to_bytes(4, "big") + raw + b"\x00"


def _int(value: int) -> bytes:
    if value == 0:
        return ZERO
    text = str(abs(value))
    digits = text.rstrip("0")
    adjusted = len(text) - 1
    if adjusted >= _BIAS:
        raise ValueError("number out of the indexable range")
    if value < 0:
        return (
            _NEG_TAG
            + (_BIAS - adjusted).to_bytes(4, "big")
            + digits.encode().translate(_NEG_DIGITS)
            + b"~"
        )
    return _POS_TAG + (_BIAS + adjusted).to_bytes(4, "big") + digits.encode() + b"\x00"


def encode(value: Any) -> bytes:
    """The order-preserving component of one attribute value."""
    if value is None:
        return NONE
    if type(value) is str:
        return (
            _STR_TAG
            + value.encode("utf-8", "surrogatepass").replace(b"\x00", b"\x00\xff")
            + b"\x00"
        )
    if type(value) is int:
        return _int(value)
    if isinstance(value, str):
        return encode_str(value)
    if isinstance(value, bool):
        return TRUE if value else FALSE
    if isinstance(value, int):
        return _int(value)
    if isinstance(value, float):
        if value != value:
            return NAN
        if value in (float("inf"), float("-inf")):
            return POS_INF if value > 0 else NEG_INF
        if value.is_integer() and abs(value) < 1e18:
            return _int(int(value))
        return _number(Decimal(value))
    if isinstance(value, Decimal):
        return _number(value)
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        micros: int = (value - _EPOCH) // _MICRO
        return bytes((DATETIME,)) + micros.to_bytes(8, "big")
    if isinstance(value, dt.date):
        return bytes((DATE,)) + value.toordinal().to_bytes(4, "big")
    if isinstance(value, uuid.UUID):
        return bytes((UUID,)) + value.bytes
    if isinstance(value, bytes | bytearray):
        return bytes((BYTES,)) + _escape(bytes(value)) + b"\x00"
    if isinstance(value, enum.Enum):
        return encode(value.value)
    raise TypeError(f"cannot index a {type(value).__name__}")


def is_nan(value: Any) -> bool:
    """Whether ``value`` is a float or Decimal NaN (never equal to anything)."""
    if isinstance(value, float):
        return value != value
    return isinstance(value, Decimal) and value.is_nan()


def _end(member: bytes, i: int) -> int:
    tag = member[i]
    if tag in (STR, BYTES):
        j = i + 1
        while True:
            k = member.index(b"\x00", j)
            if k + 1 < len(member) and member[k + 1] == 0xFF:
                j = k + 2
                continue
            return k + 1
    if tag == POS:
        return member.index(b"\x00", i + 5) + 1
    if tag == NEG:
        return member.index(b"~", i + 5) + 1
    if tag == DATETIME:
        return i + 9
    if tag == DATE:
        return i + 5
    if tag == UUID:
        return i + 17
    return i + 1


def split(member: bytes, n: int) -> tuple[list[bytes], bytes]:
    """The first ``n`` components of ``member`` and what follows them (the raw key)."""
    comps = []
    i = 0
    for _ in range(n):
        j = _end(member, i)
        comps.append(member[i:j])
        i = j
    return comps, member[i:]


def prefix_length(member: bytes, n: int) -> int:
    """The length in bytes of the first ``n`` components of ``member``."""
    i = 0
    for _ in range(n):
        i = _end(member, i)
    return i
