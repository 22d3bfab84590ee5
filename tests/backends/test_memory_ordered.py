"""The memory backend's ordered indexes give exactly what an unindexed scan through the
Python evaluator gives: random inserts, updates, patches and deletes, then random filters,
orders, limits and pages (None and missing values, ties, several blocks of entries)."""

from __future__ import annotations

import enum
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import persisty
from persisty import F, Index, stored
from persisty.backends.memory import MemoryStore
from persisty.backends.memory._ordered import SortedEntries
from persisty.query import And, Compare, Filter, Op, compile_filter, seek, sort_spec
from persisty.query import validate_filter as validated


class Shade(enum.Enum):
    DARK = "dark"
    LIGHT = "light"
    PALE = "pale"


@stored(
    indexes=[
        Index("owner", "score"),
        Index("flag", "when", "owner"),
        Index("shade"),
        Index("score", "title"),
    ]
)
class Thing:
    id: str
    owner: str | None = None
    score: int | None = None
    title: str = ""
    flag: bool | None = None
    shade: Shade | None = None
    when: datetime | None = None


@stored(key=("group", "n"), indexes=[Index("group", "value")])
class Part:
    group: str
    n: int
    value: int | None = None


T0 = datetime(2024, 1, 1, tzinfo=UTC)
OWNERS = st.sampled_from(["a", "b", "c", None])
SCORES = st.one_of(st.none(), st.integers(-2, 3))
TITLES = st.sampled_from(["", "x", "xy", "y"])
FLAGS = st.sampled_from([True, False, None])
SHADES = st.sampled_from([*Shade, None])
WHENS = st.sampled_from([None, T0, T0 + timedelta(hours=1), T0 + timedelta(days=1)])
VALUES = {
    "owner": OWNERS,
    "score": SCORES,
    "title": TITLES,
    "flag": FLAGS,
    "shade": SHADES,
    "when": WHENS,
}
ORDERED = ["owner", "score", "title", "when", "shade", "flag", "id"]


@pytest.fixture(autouse=True)
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Blocks of at most 4 entries, so a few dozen items span many blocks."""
    monkeypatch.setattr(SortedEntries, "LOAD", 2)


def things() -> st.SearchStrategy[Thing]:
    return st.builds(
        Thing,
        id=st.sampled_from([f"k{i:02d}" for i in range(40)]),
        owner=OWNERS,
        score=SCORES,
        title=TITLES,
        flag=FLAGS,
        shade=SHADES,
        when=WHENS,
    )


@st.composite
def terms(draw: st.DrawFn) -> Filter:
    attr = draw(st.sampled_from(sorted(VALUES)))
    value = draw(VALUES[attr])
    kinds = ["eq", "eq", "ne", "in"]
    if attr != "flag" or value is not None:
        kinds += ["range", "range"]
    if attr == "title":
        kinds.append("contains")
    kind = draw(st.sampled_from(kinds))
    if kind == "eq":
        return Compare(attr, Op.EQ, value)
    if kind == "ne":
        return Compare(attr, Op.NE, value)
    if kind == "in":
        return Compare(attr, Op.IN, tuple(draw(st.lists(VALUES[attr], min_size=1, max_size=3))))
    if kind == "contains":
        return F.title.contains("y")
    if value is None:
        value = draw(VALUES[attr].filter(lambda v: v is not None))
    return Compare(attr, draw(st.sampled_from([Op.LT, Op.LTE, Op.GT, Op.GTE])), value)


@st.composite
def filters(draw: st.DrawFn) -> Filter | None:
    parts = draw(st.lists(terms(), max_size=4))
    if not parts:
        return None
    if draw(st.integers(0, 9)) == 0:
        return parts[0] | And.of(*parts[1:]) if len(parts) > 1 else ~parts[0]
    return And.of(*parts)


orders = st.lists(st.tuples(st.sampled_from(ORDERED), st.booleans()), max_size=3).map(
    lambda terms: [(-getattr(F, a) if d else +getattr(F, a)) for a, d in terms]
)


def apply(store: MemoryStore, model: dict[str, Thing], op: tuple[str, Thing]) -> None:
    kind, item = op
    if kind == "put" and item.id not in model:
        model[item.id] = store.create(item)
    elif kind == "put":
        model[item.id] = store.update(item)
    elif kind == "patch" and item.id in model:
        model[item.id] = store.patch(item.id, {"score": item.score, "owner": item.owner})
    elif kind == "delete" and item.id in model:
        store.delete(item.id)
        del model[item.id]


def expected(
    store: MemoryStore,
    model: dict[str, Any],
    f: Filter | None,
    order: Any,
    after: Any = None,
    limit: int | None = None,
) -> list[Any]:
    """What an unindexed scan gives: the evaluator over every item, then the sort."""
    keep = compile_filter(validated(f, store.meta), store.meta)
    return seek([i for i in model.values() if keep(i)], sort_spec(store.meta, order), after, limit)


def pages(store: MemoryStore, f: Filter | None, order: Any, size: int) -> Iterator[Any]:
    page = store.search(f, order=order, limit=size)
    yield from page.items
    while page.next_page_key is not None:
        page = store.search(f, order=order, limit=size, page_key=page.next_page_key)
        yield from page.items


ops = st.lists(
    st.tuples(st.sampled_from(["put", "put", "put", "patch", "delete"]), things()), max_size=60
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    ops=ops,
    queries=st.lists(st.tuples(filters(), orders, st.integers(1, 7)), min_size=1, max_size=6),
)
def test_ordered_indexes_match_an_unindexed_scan(
    ops: list[tuple[str, Thing]], queries: list[Any]
) -> None:
    store = persisty.connect("memory://").store(Thing)
    assert isinstance(store, MemoryStore)
    model: dict[str, Thing] = {}
    for op in ops:
        apply(store, model, op)
    for f, order, size in queries:
        want = expected(store, model, f, order)
        assert store.count(f) == len(want), f
        assert store.search(f, order=order, limit=size).items == want[:size], (f, order)
        assert list(pages(store, f, order, size)) == want, (f, order, size)


@settings(max_examples=60, deadline=None)
@given(ops=ops, f=filters(), other=filters(), order=orders, size=st.integers(1, 5))
def test_a_page_key_from_another_filter_still_seeks_exactly(
    ops: list[tuple[str, Thing]], f: Filter | None, other: Filter | None, order: Any, size: int
) -> None:
    """A page key holds a position in the order, whatever filter made it."""
    store = persisty.connect("memory://").store(Thing)
    assert isinstance(store, MemoryStore)
    model: dict[str, Thing] = {}
    for op in ops:
        apply(store, model, op)
    page = store.search(other, order=order, limit=size)
    if page.next_page_key is None:
        return
    spec = sort_spec(store.meta, order)
    after = store.pages.decode(page.next_page_key, store.meta, spec)
    got = store.search(f, order=order, limit=size, page_key=page.next_page_key).items
    assert got == expected(store, model, f, order, after, size)


@settings(max_examples=40, deadline=None)
@given(
    parts=st.lists(
        st.tuples(
            st.sampled_from("pqr"), st.integers(0, 20), st.one_of(st.none(), st.integers(0, 3))
        ),
        max_size=40,
    ),
    group=st.sampled_from("pqr"),
    bound=st.integers(0, 3),
    desc=st.booleans(),
)
def test_composite_keys_break_ties(
    parts: list[tuple[str, int, int | None]], group: str, bound: int, desc: bool
) -> None:
    store = persisty.connect("memory://").store(Part)
    model: dict[Any, Part] = {}
    for g, n, v in parts:
        model[(g, n)] = (
            store.create(Part(group=g, n=n, value=v))
            if (g, n) not in model
            else store.update(Part(group=g, n=n, value=v))
        )
    order = [-F.value if desc else +F.value]
    for f in (
        F.group == group,
        (F.group == group) & (F.value >= bound),
        (F.group == group) & (F.value < bound),
        F.value <= bound,
    ):
        want = expected(store, model, f, order)  # type: ignore[arg-type]
        assert store.count(f) == len(want)
        assert store.search(f, order=order, limit=3).items == want[:3]
        assert list(pages(store, f, order, 2)) == want  # type: ignore[arg-type]


@settings(max_examples=80, deadline=None)
@given(
    st.lists(st.tuples(st.booleans(), st.integers(0, 30), st.integers(0, 30)), max_size=120),
    st.integers(0, 31),
    st.integers(0, 31),
    st.booleans(),
    st.integers(1, 20),
)
def test_sorted_entries_against_a_sorted_list(
    ops: list[tuple[bool, int, int]], a: int, b: int, reverse: bool, n: int
) -> None:
    entries = SortedEntries(4)
    plain: list[tuple[Any, ...]] = []
    for add, x, y in ops:
        e = (1, x, 1, y, f"k{x}-{y}", None)
        if add and e not in plain:
            entries.add(e)
            plain.append(e)
        elif not add and e in plain:
            entries.remove(e)
            plain.remove(e)
    plain.sort()
    assert len(entries) == len(plain)
    lo = entries.position((1, min(a, b)))
    hi = entries.position((1, max(a, b)), right=True)
    want = [e for e in plain if min(a, b) <= e[1] <= max(a, b)]
    assert entries.between(lo, hi) == len(want)
    walked = list(entries.walk(lo, hi, reverse=reverse))
    assert walked == (want[::-1] if reverse else want)
    assert entries.take(lo, hi, reverse, n) == walked[:n]
    full = entries.position((1, a, 1, b), right=True)
    assert entries.between((0, 0), full) == sum(1 for e in plain if e[1:4:2] <= (a, b))


def test_explain_names_the_ordered_index() -> None:
    store = persisty.connect("memory://").store(Thing)
    plan = store.explain(F.owner == "a", [-F.score])
    assert "ordered index (owner, score, id)" in plan.detail
    assert "read in order" in plan.detail
