"""A patch without a read (SQL): each changed value is checked on its own, as
:meth:`StoreMeta.build` checks it inside a whole item, and written both to its column and,
by the engine, into the stored document, in one ``UPDATE … RETURNING``.

The etag of a row written so is left empty: it is the content hash of the document that
comes back, computed by whoever reads the row (``etag(item)`` of the returned item is that
same hash). A conditional write that finds an empty etag fills it in first (only while the
document is still the one it hashed) and tries again.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import math
import typing
from typing import Any

import msgspec

from persisty.model import StoreMeta, to_utc

_FAILURES = (
    msgspec.ValidationError,
    msgspec.EncodeError,
    TypeError,
    ValueError,
    OverflowError,
    RecursionError,
)


class ValueChecks:
    """Per-attribute checks of patch values for one model (see :func:`value_checks`)."""

    def __init__(self, meta: StoreMeta, hints: dict[str, Any]) -> None:
        self.meta = meta
        self._decoders = {a.name: msgspec.json.Decoder(hints[a.name]) for a in meta.attrs}

    def checked(self, name: str, value: Any) -> tuple[Any, bytes] | None:
        """The value ``name`` holds after a patch to ``value`` and its canonical JSON; ``None``
        when it does not pass (the caller then takes the path that names the error)."""
        encode = self.meta.encode
        if isinstance(value, float) and not math.isfinite(value):
            return None  # JSON would write it as null, which an optional attribute accepts
        try:
            v = self._decoders[name].decode(encode(value))
            if type(v) is float and not math.isfinite(v):
                return None
            if isinstance(v, decimal.Decimal) and not v.is_finite():
                return None
            if isinstance(v, dt.datetime) and v.tzinfo is not dt.UTC:
                v = to_utc(v)
            return v, encode(v)
        except _FAILURES:
            return None


def value_checks(meta: StoreMeta) -> ValueChecks | None:
    """The checks of ``meta``'s patch values, or ``None`` when a changed value cannot be
    checked without the rest of the item (a ``__post_init__``, expiry stamped on every
    write, or type hints that do not resolve)."""
    cls = meta.cls
    if meta.expires is not None or getattr(cls, "__post_init__", None) is not None:
        return None
    if not dataclasses.is_dataclass(cls):
        return None
    try:
        hints = typing.get_type_hints(cls, include_extras=True)
        return ValueChecks(meta, hints)
    except Exception:
        return None
