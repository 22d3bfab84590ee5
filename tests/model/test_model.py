"""@stored: dataclass shape, keys, validation naming fields, schemas, etags."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta, timezone
from uuid import UUID

import pytest
from hypothesis import given
from hypothesis import strategies as st

from persisty import Attr, Index, ValidationError, etag, meta_of, stored
from persisty.testing.models import Doc, Item, Numbered


def test_stored_makes_a_slotted_keyword_dataclass() -> None:
    is_dataclass = dataclasses.is_dataclass(Item)  # a variable: no narrowing of Item
    assert is_dataclass
    assert "__slots__" in Item.__dict__
    a, b = Item(owner="o", title="t"), Item(owner="o", title="t")
    assert isinstance(a.id, UUID) and a.id != b.id
    meta = meta_of(Item)
    assert meta.name == "item" and meta.key.attrs == ("id",)
    assert meta.by_name["created_at"].generated == "created"
    assert not meta.by_name["id"].updatable


def test_store_name_is_snake_case_and_overridable() -> None:
    @stored
    class HTTPRequestLog:
        id: str

    @stored(name="custom")
    class Other:
        id: str

    assert meta_of(HTTPRequestLog).name == "http_request_log"
    assert meta_of(Other).name == "custom"


def test_declaration_errors_are_clear() -> None:
    with pytest.raises(TypeError, match="key"):

        @stored
        class NoKey:
            name: str

    with pytest.raises(TypeError, match="index"):

        @stored(indexes=[Index("missing")])
        class BadIndex:
            id: str


def test_validation_names_the_field() -> None:
    meta = meta_of(Item)
    for data, field in [
        ({"owner": 1, "title": "t"}, "owner"),
        ({"owner": "o"}, "title"),
        ({"owner": "o", "title": "t", "priority": "x"}, "priority"),
        ({"owner": "o", "title": "t", "color": "purple"}, "color"),
        ({"owner": "o", "title": "t" * 101}, "title"),
        ({"owner": "o", "title": "t", "extra": 1}, "extra"),
    ]:
        with pytest.raises(ValidationError) as e:
            meta.from_builtins(data)
        assert e.value.field == field, data


def test_constraints() -> None:
    @stored
    class Thing:
        id: str = Attr(min_length=1, pattern="^[a-z]+$")
        n: int = Attr(default=0, ge=0, le=10)

    meta = meta_of(Thing)
    meta.validate(Thing(id="abc", n=10))
    for bad, field in [
        (Thing(id="ABC"), "id"),
        (Thing(id="a", n=11), "n"),
        (Thing(id="", n=1), "id"),
    ]:
        with pytest.raises(ValidationError) as e:
            meta.validate(bad)
        assert e.value.field == field


def test_datetimes_are_normalized_to_utc() -> None:
    meta = meta_of(Item)
    cet = timezone(timedelta(hours=1))
    when = datetime(2024, 1, 1, 13, tzinfo=cet)
    i = meta.validate(Item(owner="o", title="t", created_at=when, updated_at=when))
    assert i.created_at == datetime(2024, 1, 1, 12, tzinfo=UTC)
    assert i.created_at.tzinfo is UTC
    noon = datetime(2024, 1, 1, 12)
    naive = meta.validate(Item(owner="o", title="t", created_at=noon, updated_at=noon))
    assert naive.created_at == datetime(2024, 1, 1, 12, tzinfo=UTC)


def test_json_schema_shapes() -> None:
    meta = meta_of(Item)
    read = meta.json_schema("read")
    create = meta.json_schema("create")
    patch = meta.json_schema("patch")
    assert "created_at" in read["properties"] and "created_at" not in create["properties"]
    assert create["required"] == ["owner", "title"]
    assert read["properties"]["title"]["maxLength"] == 100
    assert "required" not in patch and "id" not in patch["properties"]
    assert create["additionalProperties"] is False


text = st.text(st.characters(codec="utf-8"), min_size=1, max_size=20)


@given(text, text)
def test_composite_keys_round_trip(owner: str, slug: str) -> None:
    meta = meta_of(Doc)
    key = meta.key_of(Doc(owner=owner, slug=slug))
    assert meta.parse_key(key) == (owner, slug)


@given(st.integers(-(2**62), 2**62))
def test_integer_keys_round_trip(n: int) -> None:
    meta = meta_of(Numbered)
    assert meta.parse_key(meta.key_of(Numbered(id=n))) == (n,)


def test_etag_is_a_pure_function_of_content() -> None:
    a = Item(owner="o", title="t")
    assert etag(a) == etag(dataclasses.replace(a))
    assert etag(a) != etag(dataclasses.replace(a, title="u"))
    assert len(etag(a)) == 16
