"""The query language's semantics, stated with literal expectations (the evaluator is what
every backend is compared against, so it is pinned down here)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from uuid import UUID

import pytest

from persisty import F, ValidationError
from persisty.model import meta_of
from persisty.query import ALL, NONE, And, Compare, Op, Or, matches, seek, sort_spec
from persisty.testing.models import Color, Item

META = meta_of(Item)


def item(**kw: object) -> Item:
    kw.setdefault("owner", "ann")
    kw.setdefault("title", "Hello")
    return Item(**kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("f", "value", "expected"),
    [
        (F.score == None, None, True),  # noqa: E711
        (F.score != None, None, False),  # noqa: E711
        (F.score != 1.0, None, True),
        (F.score == 1.0, None, False),
        (F.score < 1.0, None, False),
        (~(F.score < 1.0), None, True),
        (F.score >= -1e9, None, False),
        (F.score.exists(), None, False),
        (F.score.exists(False), None, True),
        (F.score.in_([1.0, 2.0]), None, False),
        (F.score.in_([1.0, None]), None, True),
        (F.score > 1, 1.5, True),
        (F.score > 1.5, 1.5, False),
        (F.score >= 1.5, 1.5, True),
    ],
)
def test_none_is_two_valued(f: object, value: float | None, expected: bool) -> None:
    assert matches(f, item(score=value), META) is expected  # type: ignore[arg-type]


def test_string_ops_are_case_sensitive_unless_i() -> None:
    i = item(title="Hello World")
    assert matches(F.title.contains("World"), i, META)
    assert not matches(F.title.contains("world"), i, META)
    assert matches(F.title.icontains("WORLD"), i, META)
    assert matches(F.title.startswith("Hel"), i, META)
    assert not matches(F.title.startswith("hel"), i, META)
    assert matches(F.title.istartswith("hEL"), i, META)
    assert matches(F.title.endswith("rld"), i, META)
    assert matches(F.title.iendswith("RLD"), i, META)
    assert matches(F.title.icontains("ÄÖ"), item(title="xäöy"), META)
    assert matches(F.title > "Z", item(title="a"), META)  # code point order: "a" > "Z"


def test_contains_on_lists_is_membership() -> None:
    i = item(tags=["red", "Blue"])
    assert matches(F.tags.contains("red"), i, META)
    assert not matches(F.tags.contains("re"), i, META)
    assert not matches(F.tags.contains("blue"), i, META)
    assert matches(~F.tags.contains("green"), i, META)


def test_values_are_coerced_to_the_attribute_type() -> None:
    i = item(priority=3, due=date(2024, 2, 1), color=Color.RED)
    assert matches(F.priority == "3", i, META)
    assert matches(F.due > "2024-01-31", i, META)
    assert matches(F.color == "red", i, META)
    assert matches(F.created_at.exists(False), i, META)
    with pytest.raises(ValidationError) as e:
        matches(F.priority == "three", i, META)
    assert e.value.field == "priority"


def test_text_query_searches_every_string_attribute() -> None:
    from persisty.query import TextQuery

    assert matches(TextQuery("WORLD"), item(title="hello world"), META)
    assert matches(TextQuery("bod"), item(body="Body"), META)
    assert not matches(TextQuery("zzz"), item(), META)


def test_combinators_fold_constants() -> None:
    a = F.owner == "ann"
    assert (a & ALL) == a and (a | NONE) == a
    assert (a & NONE) is NONE and (a | ALL) is ALL
    assert ~ALL is NONE and ~~a == a
    assert isinstance((a & (F.priority > 1)) & (F.title == "x"), And)
    assert len(((a | (F.priority > 1)) | (F.title == "x")).filters) == 3  # type: ignore[attr-defined]
    assert isinstance(a | a, Or)
    assert Compare("owner", Op.EQ, "ann") == a


def test_none_sorts_first_ascending_last_descending() -> None:
    xs = [item(score=s, id=UUID(int=i)) for i, s in enumerate([2.0, None, -1.0, None, 0.5])]
    asc = seek(xs, sort_spec(META, [+F.score]), None, None)
    assert [x.score for x in asc] == [None, None, -1.0, 0.5, 2.0]
    assert [x.id.int for x in asc[:2]] == [1, 3]  # ties broken by key
    desc = seek(xs, sort_spec(META, [-F.score]), None, None)
    assert [x.score for x in desc] == [2.0, 0.5, -1.0, None, None]
    assert [x.id.int for x in desc[3:]] == [1, 3]


def test_seek_continues_strictly_after_the_cursor() -> None:
    xs = [item(priority=p, id=UUID(int=i)) for i, p in enumerate([1, 1, 2, 2, 3])]
    spec = sort_spec(META, [-F.priority])
    assert spec[-1] == ("id", False)
    after = (2, UUID(int=2))
    assert [x.id.int for x in seek(xs, spec, after, None)] == [3, 0, 1]
    assert [x.id.int for x in seek(xs, spec, after, 1)] == [3]


def test_bad_filters_name_the_attribute() -> None:
    cases = [
        (F.nope == 1, "nope"),
        (F.tags < "x", "tags"),
        (F.active.startswith("t"), "active"),
        (F.priority.in_("12"), "priority"),
        (F.score < None, "score"),
    ]
    for f, field in cases:
        with pytest.raises(ValidationError) as e:
            matches(f, item(), META)
        assert e.value.field == field


def test_datetimes_compare_as_instants() -> None:
    i = item(created_at=datetime(2024, 1, 1, 12, tzinfo=UTC))
    assert matches(F.created_at == "2024-01-01T13:00:00+01:00", i, META)
    assert matches(F.created_at < "2024-01-01T12:00:01Z", i, META)
