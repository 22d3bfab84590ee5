"""The bulk create path (one validation pass, rows built column by column) gives exactly
what the one-item path gives: the same stored items, the same rows for every SQL dialect,
the same error for the first bad item."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from persisty.backends.sql import TableSchema, dialect_for
from persisty.backends.sql._table import _json_texts
from persisty.backends.sql.dialects._base import json_text as _json_text
from persisty.backends.sql.dialects.sqlite import sqlite_datetime as _sqlite_datetime
from persisty.backends.sql.dialects.sqlite import sqlite_datetimes as _sqlite_datetimes
from persisty.errors import ValidationError
from persisty.model import etag_of, etags_of, meta_of
from persisty.store._prepare import prepare_create, prepare_creates
from persisty.testing.models import Color, Item

META = meta_of(Item)
NOW = dt.datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=dt.UTC)

# values the model accepts, some after coercion (ints for floats, offset datetimes, enum
# values by name) ...
_datetimes = st.datetimes(
    dt.datetime(1990, 1, 1),
    dt.datetime(2100, 1, 1),
    timezones=st.sampled_from([dt.UTC, dt.timezone(dt.timedelta(hours=5))]),
)
_GOOD: dict[str, st.SearchStrategy[Any]] = {
    "owner": st.text(max_size=5),
    "title": st.text(max_size=8),
    "priority": st.integers(-(2**63), 2**63 - 1),
    "score": st.one_of(st.none(), st.integers(-5, 5), st.floats(allow_nan=False)),
    "tags": st.one_of(st.lists(st.text(max_size=3), max_size=3), st.just(("a",))),
    "color": st.one_of(st.none(), st.sampled_from(list(Color)), st.just("red")),
    "due": st.one_of(st.none(), st.dates()),
    "active": st.booleans(),
    "amount": st.one_of(
        st.none(),
        st.decimals(allow_nan=False, allow_infinity=False, places=3),
        st.just(Decimal("1e3")),
    ),
    "created_at": st.one_of(st.none(), _datetimes),
    "updated_at": st.one_of(st.none(), _datetimes),
}
# ... and the near misses it must reject
_BAD: dict[str, st.SearchStrategy[Any]] = {
    "owner": st.integers(0, 3),
    "title": st.just("x" * 101),
    "priority": st.sampled_from(["3", 1.5]),
    "tags": st.just([1]),
    "color": st.just("mauve"),
    "active": st.just(1),
}


@st.composite
def items(draw: st.DrawFn) -> Item:
    values = {}
    for name, good in _GOOD.items():
        bad = _BAD.get(name)
        miss = bad is not None and draw(st.integers(0, 40)) == 0
        values[name] = draw(bad if miss and bad is not None else good)
    return Item(**values)


def _outcome(fn: Any) -> Any:
    try:
        return ("ok", fn())
    except ValidationError as e:
        return ("error", str(e), e.field)


@settings(max_examples=300, deadline=None)
@given(st.lists(items(), min_size=1, max_size=6))
def test_prepare_creates_equals_prepare_create_each(batch: list[Item]) -> None:
    def one_by_one() -> list[Any]:
        return [prepare_create(META, i, NOW) for i in batch]

    assert _outcome(lambda: prepare_creates(META, batch, NOW)) == _outcome(one_by_one)


def test_prepare_creates_takes_mappings_and_names_the_bad_item() -> None:
    good = {"owner": "ann", "title": "a"}
    created = prepare_creates(META, [good, Item(owner="bob", title="b")], NOW)
    assert [i.owner for i in created] == ["ann", "bob"]
    assert all(i.created_at == NOW and i.updated_at == NOW for i in created)
    with pytest.raises(ValidationError) as e:
        prepare_creates(META, [good, Item(owner="bob", title="b" * 101)], NOW)
    assert e.value.field == "title"
    with pytest.raises(ValidationError):
        prepare_creates(META, [good, "not an item"], NOW)


@pytest.mark.parametrize("engine", ["sqlite", "postgresql", "mysql"])
@settings(max_examples=100, deadline=None)
@given(batch=st.lists(items(), min_size=1, max_size=6))
def test_insert_rows_equal_insert_row_each(engine: str, batch: list[Item]) -> None:
    schema = TableSchema(META, dialect_for(f"{engine}://"), None, sa.MetaData())
    try:
        stored = [prepare_create(META, i, NOW) for i in batch]
    except ValidationError:
        return
    assert list(schema.insert_rows(stored)) == [schema.insert_row(i) for i in stored]


@given(
    st.lists(
        st.one_of(
            st.none(),
            st.datetimes(timezones=st.sampled_from([dt.UTC, dt.timezone(dt.timedelta(hours=-3))])),
        ),
        max_size=8,
    )
)
def test_sqlite_datetimes_equal_sqlite_datetime_each(values: list[dt.datetime | None]) -> None:
    expected = [None if v is None else _sqlite_datetime(v) for v in values]
    assert _sqlite_datetimes(values) == expected


@given(st.lists(st.binary(max_size=40), max_size=8))
def test_etags_of_equal_etag_of_each(raws: list[bytes]) -> None:
    assert etags_of(raws) == [etag_of(r) for r in raws]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.none(),
            st.lists(st.text(max_size=4), max_size=3),
            st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
        ),
        max_size=20,
    ),
    st.booleans(),
)
def test_json_texts_equal_json_text_each(values: list[Any], optional: bool) -> None:
    want = [None if v is None and optional else _json_text(v) for v in values]
    assert _json_texts(values, optional) == want
