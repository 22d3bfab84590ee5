"""Items to DynamoDB attribute values and back, exactly; order-preserving key bytes.

Every attribute of an item is stored under its own name in DynamoDB's native types so that
FilterExpressions can test it: ``str``/``datetime``/``date``/``uuid`` as S (datetimes in a
fixed-width UTC form whose text order is time order), numbers as N, ``bytes`` as B, ``bool``
as BOOL, lists of scalars as L, everything else (dicts, nested dataclasses, lists of those)
as S holding canonical JSON. ``None`` is stored by leaving the attribute out.

Numbers whose DynamoDB text would not give back the same Python value (``Decimal("1.20")``
is normalized to ``1.2`` by DynamoDB; ``-0.0``) keep their exact JSON in the ``~x`` map, so
every item round-trips exactly (same etag).

The key attributes and the keys of the secondary indexes are synthetic binary attributes
(``~pk``, ``~sk``, ``~p<i>``, ``~s<i>``) holding :func:`order_bytes`: a prefix-free encoding
whose byte order is the Python order of the values (``None`` first). That makes native
ordering and ranges on an index's sort key exact, and allows empty strings in indexed
attributes (which DynamoDB refuses as key values).
"""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import math
import uuid
from collections.abc import Sequence
from typing import Any

import msgspec

from persisty.errors import ValidationError
from persisty.model import AttrMeta, StoreMeta, etag, key_text

PK = "~pk"
SK = "~sk"
ETAG = "~e"
"""The stored etag; left out by a patch without a read (then the content hash, computed by
the reader: ``etag(item)`` of the item read)."""
VERSION = "~v"
"""Counts the patches without a read since the item was last put whole: a conditional write
that finds no stored etag fills it in while this is as it read it."""
TTL = "~t"
"""The table's TimeToLive attribute: an expiring item's expiry in epoch seconds."""
EXACT = "~x"
MAX_ITEM_BYTES = 400 * 1024
MAX_PARTITION_BYTES = 2048
MAX_SORT_BYTES = 1024
NATIVE_SCALARS = frozenset(
    {"str", "int", "float", "bool", "datetime", "date", "uuid", "decimal", "bytes", "enum"}
)
_JSON = msgspec.json.Encoder(order="deterministic")
_DEC_CONTEXT = decimal.Context(prec=60)


# ---- order-preserving bytes -------------------------------------------------------------


def _escape(raw: bytes) -> bytes:
    return raw.replace(b"\x00", b"\x00\xff") + b"\x00"


def _number_bytes(d: decimal.Decimal) -> bytes:
    if d.is_zero():
        return b"\x80"
    sign, digits, exp = d.as_tuple()
    assert isinstance(exp, int)
    ds = list(digits)
    while len(ds) > 1 and ds[-1] == 0:
        ds.pop()
        exp += 1
    while len(ds) > 1 and ds[0] == 0:
        ds.pop(0)
    e = len(ds) + exp + (1 << 31)
    body = e.to_bytes(4, "big") + bytes(0x30 + x for x in ds)
    if not sign:
        return b"\x81" + body + b"\x00"
    return b"\x7f" + bytes(255 - b for b in body) + b"\xff"


def datetime_text(v: dt.datetime) -> str:
    """A UTC datetime as fixed-width ISO text (its text order is its time order)."""
    v = v.astimezone(dt.UTC) if v.tzinfo is not dt.UTC else v
    return (
        f"{v.year:04d}-{v.month:02d}-{v.day:02d}T{v.hour:02d}:{v.minute:02d}:"
        f"{v.second:02d}.{v.microsecond:06d}+00:00"
    )


def order_bytes(v: Any) -> bytes:
    """Prefix-free bytes whose order is the Python order of ``v`` (``None`` first)."""
    if v is None:
        return b"\x00"
    if isinstance(v, enum.Enum):
        v = v.value
    if isinstance(v, bool):
        return b"\x01\x01" if v else b"\x01\x00"
    if isinstance(v, str):
        return b"\x05" + _escape(v.encode())
    if isinstance(v, int):
        return b"\x03" + _number_bytes(decimal.Decimal(v))
    if isinstance(v, float):
        return b"\x03" + _number_bytes(decimal.Decimal(repr(v)))
    if isinstance(v, decimal.Decimal):
        return b"\x03" + _number_bytes(v)
    if isinstance(v, dt.datetime):
        return b"\x05" + _escape(datetime_text(v).encode())
    if isinstance(v, dt.date):
        return b"\x05" + _escape(v.isoformat().encode())
    if isinstance(v, uuid.UUID):
        return b"\x07" + v.bytes
    if isinstance(v, bytes | bytearray):
        return b"\x06" + _escape(bytes(v))
    raise TypeError(f"cannot order {type(v).__name__}")


def partition_text(v: Any) -> str:
    """The table's partition key text of a key value: ``k`` and the value's key text."""
    if isinstance(v, decimal.Decimal):
        return "k" + format(v.normalize(_DEC_CONTEXT), "f")
    return "k" + key_text(v)


def successor(prefix: bytes) -> bytes:
    """The smallest byte string greater than every string starting with ``prefix``."""
    raw = bytearray(prefix)
    while raw and raw[-1] == 0xFF:
        raw.pop()
    if not raw:
        return b"\xff" * (len(prefix) + 1)
    raw[-1] += 1
    return bytes(raw)


def string_prefix(text: str) -> bytes:
    """The order bytes every string starting with ``text`` starts with."""
    return b"\x05" + text.encode().replace(b"\x00", b"\x00\xff")


# ---- numbers ------------------------------------------------------------------------------


def _number_text(d: decimal.Decimal, name: str) -> str:
    """DynamoDB's N text for a finite number; ``ValidationError`` outside its range."""
    if not d.is_finite():
        raise ValidationError(f"{name}: {d} cannot be stored in DynamoDB", field=name)
    if d.is_zero():
        return "0"
    n = d.normalize(_DEC_CONTEXT)
    digits = len(n.as_tuple().digits)
    if digits > 38:
        raise ValidationError(
            f"{name}: {d} has {digits} significant digits; DynamoDB keeps at most 38", field=name
        )
    if not decimal.Decimal("1e-130") <= abs(n) < decimal.Decimal("1e126"):
        raise ValidationError(f"{name}: {d} is outside DynamoDB's number range", field=name)
    return format(n, "f")


def number_av(a: AttrMeta, v: Any) -> tuple[dict[str, Any], bool]:
    """(attribute value, exact) for a number of attribute ``a``."""
    if isinstance(v, bool):
        v = int(v)
    if isinstance(v, int):
        return {"N": _number_text(decimal.Decimal(v), a.name)}, True
    if isinstance(v, float):
        if not math.isfinite(v):
            raise ValidationError(f"{a.name}: {v} cannot be stored in DynamoDB", field=a.name)
        text = _number_text(decimal.Decimal(repr(v)), a.name)
        return {"N": text}, not (v == 0 and math.copysign(1.0, v) < 0)
    d = v if isinstance(v, decimal.Decimal) else decimal.Decimal(str(v))
    text = _number_text(d, a.name)
    return {"N": text}, str(d) == text


# ---- values ---------------------------------------------------------------------------


def scalar_av(a: AttrMeta, kind: str, v: Any) -> tuple[dict[str, Any], bool]:
    """(attribute value, exact) of a non-None scalar of ``kind``."""
    if kind == "str":
        return {"S": v}, True
    if kind in ("int", "float", "decimal"):
        return number_av(a, v)
    if kind == "bool":
        return {"BOOL": bool(v)}, True
    if kind == "datetime":
        return {"S": datetime_text(v)}, True
    if kind in ("date", "uuid"):
        return {"S": str(v)}, True
    if kind == "bytes":
        return {"B": bytes(v)}, True
    if kind == "enum":
        plain = v.value if isinstance(v, enum.Enum) else v
        if isinstance(plain, str):
            return {"S": plain}, True
        if isinstance(plain, int | float | decimal.Decimal):
            return number_av(a, plain)
        return {"S": _JSON.encode(plain).decode()}, True
    raise TypeError(kind)


def enum_native(a: AttrMeta) -> bool:
    """Whether an enum's values are all strings or all integers (comparable natively)."""
    if a.enum_type is None:
        return False
    values = [m.value for m in a.enum_type]
    return all(isinstance(x, str) for x in values) or all(
        isinstance(x, int) and not isinstance(x, bool) for x in values
    )


def filter_value_av(a: AttrMeta, v: Any, element: bool = False) -> dict[str, Any] | None:
    """The attribute value a filter compares against, or ``None`` when not expressible."""
    kind = (a.item_kind or "any") if element else a.kind
    if kind not in NATIVE_SCALARS or (kind == "enum" and not element and not enum_native(a)):
        return None
    if kind == "enum" and element:
        return None
    try:
        av, _ = scalar_av(a, kind, v)
    except (ValidationError, TypeError, ValueError):
        return None
    return av


def _size(av: dict[str, Any]) -> int:
    ((t, v),) = av.items()
    if t == "S":
        return len(v.encode()) if not v.isascii() else len(v)
    if t == "N":
        return len(v) // 2 + 2
    if t == "B":
        return len(v)
    if t in ("BOOL", "NULL"):
        return 1
    if t == "L":
        return 3 + sum(1 + _size(x) for x in v)
    if t == "M":
        return 3 + sum(len(k) + 1 + _size(x) for k, x in v.items())
    return 8


class Codec:
    """Item <-> DynamoDB item (low-level attribute values) for one store."""

    def __init__(self, meta: StoreMeta) -> None:
        self.meta = meta
        self.attrs = meta.attrs
        self.key_attrs = meta.key.attrs
        self.composite = len(self.key_attrs) > 1
        self.indexes = meta.indexes
        self._list_kinds = {
            a.name: (
                a.item_kind if a.item_kind in NATIVE_SCALARS and a.item_kind != "enum" else None
            )
            for a in self.attrs
            if a.kind == "list"
        }
        self._item_decoders = {a.name: msgspec.json.Decoder(a.type) for a in self.attrs}

    # ---- keys -----------------------------------------------------------------------

    def key_av(self, key: Sequence[Any]) -> dict[str, Any]:
        """The DynamoDB primary key of typed key values."""
        if not self.composite:
            return {PK: {"S": partition_text(key[0])}}
        return {
            PK: {"S": partition_text(key[0])},
            SK: {"B": b"".join(order_bytes(k) for k in key[1:])},
        }

    def index_keys(self, item: Any) -> dict[str, Any]:
        """The synthetic key attributes of every secondary index for ``item``."""
        result: dict[str, Any] = {}
        for i, ix in enumerate(self.indexes):
            first = getattr(item, ix.attrs[0])
            if first is None:
                continue  # sparse: an item without the value is not in the index
            result[f"~p{i}"] = {"B": order_bytes(first)}
            if len(ix.attrs) > 1:
                result[f"~s{i}"] = {"B": order_bytes(getattr(item, ix.attrs[1]))}
        return result

    # ---- items ----------------------------------------------------------------------

    def dump(self, item: Any, tag: str) -> dict[str, Any]:
        """The DynamoDB item for ``item`` with etag ``tag``; ``ValidationError`` when it
        cannot be stored (number out of range, over 400 KB)."""
        out: dict[str, Any] = self.key_av([getattr(item, n) for n in self.key_attrs])
        exact: dict[str, Any] = {}
        for a in self.attrs:
            v = getattr(item, a.name)
            if v is None:
                continue
            av, ok = self.attr_av(a, v)
            out[a.name] = av
            if not ok:
                exact[a.name] = {"S": _JSON.encode(v).decode()}
        if exact:
            out[EXACT] = {"M": exact}
        out[ETAG] = {"S": tag}
        if self.meta.expires is not None:
            at = getattr(item, self.meta.expires)
            if at is not None:
                out[TTL] = self.ttl_av(at)
        out.update(self.index_keys(item))
        self._check_key_sizes(out, item)
        size = sum(len(k) + _size(v) for k, v in out.items())
        if size > MAX_ITEM_BYTES:
            raise ValidationError(
                f"{self.meta.name}: the item is {size:,} bytes in DynamoDB, over its limit of "
                f"400 KB ({MAX_ITEM_BYTES:,} bytes)"
            )
        return out

    def attr_av(self, a: AttrMeta, v: Any) -> tuple[dict[str, Any], bool]:
        """(attribute value, exact) of the non-None value ``v`` of attribute ``a``; not
        exact means the value's JSON goes to the ``~x`` map beside it."""
        kind = a.kind
        if kind in NATIVE_SCALARS:
            return scalar_av(a, kind, v)
        ek = self._list_kinds.get(a.name) if kind == "list" else None
        if ek is not None:
            elements = []
            ok = True
            for x in v:
                if x is None:
                    elements.append({"NULL": True})
                else:
                    e_av, e_ok = scalar_av(a, ek, x)
                    ok = ok and e_ok
                    elements.append(e_av)
            # a set's canonical order is kept exactly in ~x
            return {"L": elements}, ok and not isinstance(v, set | frozenset)
        return {"S": _JSON.encode(v).decode()}, True

    def ttl_av(self, at: dt.datetime) -> dict[str, Any]:
        """The TimeToLive attribute value of an expiry instant (DynamoDB deletes the item,
        within days, after it; reads filter what is left)."""
        return {"N": str(int(at.timestamp()) + 1)}

    def _check_key_sizes(self, out: dict[str, Any], item: Any) -> None:
        """DynamoDB refuses a partition key over 2,048 bytes and a sort key over 1,024 (of
        the table and of every index): the error names the attribute, before DynamoDB sees
        the item."""
        limits = [(PK, MAX_PARTITION_BYTES, self.key_attrs[0])]
        if self.composite:  # the sort key holds the other key attributes: name the largest
            rest = max(self.key_attrs[1:], key=lambda n: len(order_bytes(getattr(item, n))))
            limits.append((SK, MAX_SORT_BYTES, rest))
        for i, ix in enumerate(self.indexes):
            limits.append((f"~p{i}", MAX_PARTITION_BYTES, ix.attrs[0]))
            if len(ix.attrs) > 1:
                limits.append((f"~s{i}", MAX_SORT_BYTES, ix.attrs[1]))
        for name, limit, attr in limits:
            av = out.get(name)
            if av is None:
                continue
            value = av.get("S", av.get("B", b""))
            size = len(value.encode()) if isinstance(value, str) else len(value)
            if size > limit:
                raise ValidationError(
                    f"{self.meta.name}: {attr} is {size:,} bytes as a DynamoDB key, over its "
                    f"limit of {limit:,} bytes",
                    field=attr,
                )

    def load(self, raw: dict[str, Any]) -> tuple[Any, str]:
        """The item and its etag from a DynamoDB item."""
        exact = raw.get(EXACT)
        data: dict[str, Any] = {}
        for a in self.attrs:
            name = a.name
            av = raw.get(name)
            if av is None:
                data[name] = None
                continue
            if exact is not None and name in exact["M"]:
                data[name] = self._item_decoders[name].decode(exact["M"][name]["S"])
                continue
            kind = a.kind
            if kind == "str":
                data[name] = av["S"]
            elif kind == "int":
                data[name] = int(av["N"])
            elif kind == "float":
                data[name] = float(av["N"])
            elif kind == "decimal":
                data[name] = decimal.Decimal(av["N"])
            elif kind == "bool":
                data[name] = av["BOOL"]
            elif kind == "datetime":
                data[name] = dt.datetime.fromisoformat(av["S"])
            elif kind == "date":
                data[name] = dt.date.fromisoformat(av["S"])
            elif kind == "uuid":
                data[name] = uuid.UUID(av["S"])
            elif kind == "bytes":
                data[name] = bytes(av["B"])
            elif kind == "enum":
                assert a.enum_type is not None
                if "S" in av:
                    text = av["S"]
                    try:
                        data[name] = a.enum_type(text)
                    except ValueError:
                        data[name] = a.enum_type(msgspec.json.decode(text))
                else:
                    n = decimal.Decimal(av["N"])
                    data[name] = a.enum_type(int(n) if n == n.to_integral_value() else float(n))
            elif kind == "list" and "L" in av:
                values = [_plain(x, a.item_kind) for x in av["L"]]
                data[name] = msgspec.convert(values, a.type, strict=False)
            else:
                data[name] = self._item_decoders[name].decode(av["S"])
        item = self.meta.cls(**data)
        tag = raw.get(ETAG)
        # a patch without a read leaves the etag out: it is the hash of the content
        return item, etag(item) if tag is None else tag["S"]


def _plain(av: dict[str, Any], kind: str | None) -> Any:
    ((t, v),) = av.items()
    if t == "S":
        return v
    if t == "N":
        if kind == "int":
            return int(v)
        if kind == "decimal":
            return decimal.Decimal(v)
        return float(v)
    if t == "B":
        return bytes(v)
    if t == "BOOL":
        return v
    return None


__all__ = ["Codec", "order_bytes", "string_prefix", "successor"]
