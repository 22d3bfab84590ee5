"""Per-attribute checks of patch values, for backends whose patch sets the changed values
without reading the item first (SQL's ``UPDATE … RETURNING``, DynamoDB's ``UpdateItem``):
each changed value is checked on its own, as :meth:`StoreMeta.build` checks it inside a
whole item.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import decimal
import gc
import math
import typing
from collections.abc import Callable, Iterator
from typing import Any

import msgspec

from persisty.model import StoreMeta, to_utc

_INT64 = 2**63
CHECK_FAILURES: tuple[type[BaseException], ...] = (
    msgspec.ValidationError,
    msgspec.EncodeError,
    TypeError,
    ValueError,
    OverflowError,
    RecursionError,
)
"""What encoding or decoding a value that does not fit its attribute raises."""

Plain = tuple[tuple[str, type[Any], Callable[[Any], Any] | None], ...]
"""Per attribute of a patch, in order: its plain type and its parameter conversion."""


class ValueChecks:
    """Per-attribute checks of patch values for one model.

    ``hints`` are the model's resolved type hints; ``convs`` what turns each attribute's
    value into the engine's parameter (``None``: the value as it is).

    Example::

        checks = value_checks(meta_of(Note))
        assert checks is not None
        assert checks.checked("title", "x") == ("x", '"x"')   # the value and its JSON
        assert checks.checked("priority", "high") is None     # not an int
    """

    def __init__(
        self,
        meta: StoreMeta,
        hints: dict[str, Any],
        convs: dict[str, Callable[[Any], Any] | None] | None = None,
    ) -> None:
        self.meta = meta
        self.convs = convs if convs is not None else {a.name: None for a in meta.attrs}
        """Value -> engine parameter of each attribute (``None``: unchanged)."""
        self._decoders = {a.name: msgspec.json.Decoder(hints[a.name]) for a in meta.attrs}
        # attributes of a bare str/int/float/bool (no constraint, not optional): a value of
        # exactly that type passes as it is (bool is no int here: type() is exact)
        self._plain = {
            a.name: hints[a.name] for a in meta.attrs if hints[a.name] in (str, int, float, bool)
        }

    def plain_plan(self, names: tuple[str, ...]) -> Plain | None:
        """Per name its plain type and parameter conversion when every one is of a bare
        str/int/float/bool attribute (a store's hot path checks those inline)."""
        if not all(n in self._plain for n in names):
            return None
        return tuple((n, self._plain[n], self.convs[n]) for n in names)

    def checked(self, name: str, value: Any) -> tuple[Any, str] | None:
        """The value ``name`` holds after a patch to ``value`` and its canonical JSON text;
        ``None`` when it does not pass (the caller then takes the path that names the
        error)."""
        encode = self.meta.encode
        t = type(value)
        if self._plain.get(name) is t and (
            (t is not float or math.isfinite(value)) and (t is not int or -_INT64 <= value < _INT64)
        ):
            try:
                return value, encode(value).decode()
            except CHECK_FAILURES:  # a lone surrogate in a str
                return None
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
            return v, encode(v).decode()
        except CHECK_FAILURES:
            return None


def value_checks(
    meta: StoreMeta, convs: dict[str, Callable[[Any], Any] | None] | None = None
) -> ValueChecks | None:
    """The checks of ``meta``'s patch values, or ``None`` when a changed value cannot be
    checked without the rest of the item (a ``__post_init__``, or type hints that do not
    resolve). Whether expiry stamped on every write allows a patch without a read is the
    backend's to decide.

    Example::

        checks = value_checks(meta_of(Note))   # None: read, change, write
    """
    cls = meta.cls
    if getattr(cls, "__post_init__", None) is not None or not dataclasses.is_dataclass(cls):
        return None
    try:
        hints = typing.get_type_hints(cls, include_extras=True)
        return ValueChecks(meta, hints, convs)
    except Exception:  # unresolvable hints: the read path checks the whole item
        return None


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Python's cyclic garbage collector held off for a block that builds many objects
    which all stay alive (a bulk write's items, rows and results): a collection in it
    would only walk them, and promote them to be walked again by the next full one. Back
    on after the block if it was on before (a program that turned it off keeps it off).
    Only for a block that does not wait (no ``await`` in it).

    Example::

        with gc_paused():
            items = [Note(title=str(i)) for i in range(1000)]
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
