"""Filters and orders round-trip through JSON and the query-string form; page keys are
tamper-evident (property-based)."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from persisty import F, ValidationError
from persisty.model import meta_of
from persisty.query import (
    And,
    Order,
    PageKeys,
    filter_from_json,
    filter_from_query,
    filter_to_json,
    filter_to_query,
    order_from_text,
    order_to_text,
    sort_spec,
    validate_filter,
)
from persisty.testing._data import filters, sample_items
from persisty.testing.models import Doc, Item

META = meta_of(Item)
ITEMS = sample_items(40)


def _same(a: object, b: object) -> bool:
    va = validate_filter(a, META)  # type: ignore[arg-type]
    vb = validate_filter(b, META)  # type: ignore[arg-type]
    from persisty.query import compile_filter

    fa, fb = compile_filter(va, META), compile_filter(vb, META)
    return all(fa(i) == fb(i) for i in ITEMS)


@settings(max_examples=200, deadline=None)
@given(filters)
def test_json_round_trip(f: object) -> None:
    import msgspec

    wire = msgspec.json.decode(msgspec.json.encode(filter_to_json(f)))  # type: ignore[arg-type]
    assert _same(filter_from_json(wire), f)


@settings(max_examples=200, deadline=None)
@given(filters)
def test_query_string_round_trip(f: object) -> None:
    pairs = filter_to_query(validate_filter(f, META))  # type: ignore[arg-type]
    back = filter_from_query(parse_qsl(urlencode(pairs), keep_blank_values=True))
    assert _same(back, f)


def test_query_string_form() -> None:
    f = filter_from_query(
        parse_qsl(
            "owner=ann&priority__gte=1&title__icontains=x&"
            "owner__in=a&owner__in=b&order=-priority,title&limit=5"
        )
    )
    assert isinstance(f, And)
    v = validate_filter(f, META)
    assert (F.priority >= 1) in v.filters  # type: ignore[attr-defined]
    assert F.owner.in_(["a", "b"]) in v.filters  # type: ignore[attr-defined]
    assert order_from_text("-priority,title") == (Order("priority", True), Order("title"))
    assert order_to_text([-F.priority, +F.title]) == "-priority,title"
    with pytest.raises(ValidationError) as e:
        validate_filter(filter_from_query([("priority__near", "1")]), META)
    assert e.value.field == "priority"
    with pytest.raises(ValidationError):
        filter_from_query([("filter", "{not json")])


keys = PageKeys(b"k" * 32)
SPEC = sort_spec(META, [-F.priority, +F.due])


@given(st.integers(-(10**9), 10**9), st.one_of(st.none(), st.dates()), st.uuids())
def test_page_keys_round_trip(p: int, d: object, u: object) -> None:
    token = keys.encode(META, SPEC, (p, d, u))
    assert keys.decode(token, META, SPEC) == (p, d, u)


@given(st.integers(0, 10**6), st.data())
def test_page_keys_detect_any_change(p: int, data: st.DataObject) -> None:
    token = keys.encode(
        META, SPEC, (p, None, META.key_attrs[0].coerce("00000000-0000-0000-0000-000000000001"))
    )
    i = data.draw(st.integers(0, len(token) - 1))
    c = data.draw(st.sampled_from("ABCabc012-_."))
    forged = token[:i] + c + token[i + 1 :]
    if forged != token:
        with pytest.raises(ValidationError):
            keys.decode(forged, META, SPEC)


def test_page_keys_are_bound_to_store_order_and_secret() -> None:
    token = keys.encode(META, SPEC, (1, None, "00000000-0000-0000-0000-000000000001"))
    with pytest.raises(ValidationError):
        keys.decode(token, META, sort_spec(META, [+F.priority, +F.due]))
    with pytest.raises(ValidationError):
        keys.decode(token, meta_of(Doc), SPEC)
    with pytest.raises(ValidationError):
        PageKeys(b"other").decode(token, META, SPEC)
