"""The order-preserving index encoding: byte order of components == persisty's value order."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from persisty.backends.redis import _encoding as enc

BIG = 10**30
numbers = st.one_of(
    st.integers(-BIG, BIG),
    st.floats(allow_nan=False),
    st.decimals(allow_nan=False, allow_infinity=False, places=None).filter(
        lambda d: abs(d.adjusted()) < 10_000
    ),
)
strings = st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=12)
datetimes = st.datetimes(timezones=st.just(dt.UTC))


def _cmp(a: Any, b: Any) -> int:
    if a is None or b is None:
        return (a is not None) - (b is not None)
    return int(a > b) - int(a < b)


def _bcmp(a: bytes, b: bytes) -> int:
    return (a > b) - (a < b)


def _check(a: Any, b: Any) -> None:
    assert _bcmp(enc.encode(a), enc.encode(b)) == _cmp(a, b), (a, b)


@given(st.one_of(st.none(), numbers), st.one_of(st.none(), numbers))
def test_numbers_order_exactly(a: Any, b: Any) -> None:
    _check(a, b)


@given(st.one_of(st.none(), strings), st.one_of(st.none(), strings))
def test_strings_order_by_code_point(a: str | None, b: str | None) -> None:
    _check(a, b)


@given(st.binary(max_size=8), st.binary(max_size=8))
def test_bytes_order(a: bytes, b: bytes) -> None:
    _check(a, b)


@given(datetimes, datetimes)
def test_datetimes_order(a: dt.datetime, b: dt.datetime) -> None:
    _check(a, b)


@given(st.dates(), st.dates())
def test_dates_order(a: dt.date, b: dt.date) -> None:
    _check(a, b)


@given(st.uuids(), st.uuids())
def test_uuids_order(a: uuid.UUID, b: uuid.UUID) -> None:
    _check(a, b)


def test_equal_numbers_encode_equally() -> None:
    assert enc.encode(1) == enc.encode(1.0) == enc.encode(Decimal("1.00"))
    assert enc.encode(0.0) == enc.encode(-0.0) == enc.encode(0) == enc.encode(Decimal("-0"))
    assert enc.encode(2**60 + 1) != enc.encode(float(2**60))  # beyond float precision: exact


@given(st.text(max_size=6), strings)
def test_string_prefix_bounds(prefix: str, s: str) -> None:
    p = enc.str_prefix(prefix)
    inside = p <= enc.encode(s) < p + enc.TOP
    assert inside == s.startswith(prefix)


@given(
    st.lists(
        st.one_of(
            st.none(),
            numbers,
            strings,
            datetimes,
            st.uuids(),
            st.booleans(),
            st.binary(max_size=4),
            st.dates(),
        ),
        max_size=5,
    ),
    st.text(min_size=1, max_size=5),
)
def test_split_recovers_components(values: list[Any], key: str) -> None:
    comps = [enc.encode(v) for v in values]
    member = b"".join(comps) + key.encode("utf-8", "surrogatepass")
    got, rest = enc.split(member, len(comps))
    assert got == comps
    assert rest == key.encode("utf-8", "surrogatepass")
    for c in comps:  # no component reaches 0xff where the next one could start
        assert c + enc.TOP > c + b"\xfe"
