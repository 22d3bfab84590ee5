"""Sample data and random filters for the conformance suite."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from hypothesis import strategies as st

from persisty.query import ALL, NONE, F, Filter, Not, TextQuery
from persisty.testing.models import Color, Item

OWNERS = ["ann", "bob", "Ann", "ünïcode", "", "zoë", "b%_x"]
TITLES = [
    "Hello",
    "hello world",
    "HELLO",
    "",
    "Ünïcode ÄÖÜ",
    "a_b%c",
    "zebra",
    "Alpha",
    "alpha",
    "日本語テキスト",
    "emoji 🎉",
    "x" * 100,
    "tab\there",
    "ß straße",
]
TAGS = ["x", "y", "z", "X", "", "ü"]
BASE = datetime(2024, 1, 1, tzinfo=UTC)


def sample_items(n: int = 40, seed: int = 7) -> list[Item]:
    """``n`` varied items: every attribute kind, None values, unicode and empty strings."""
    rnd = random.Random(seed)
    items = []
    for i in range(n):
        items.append(
            Item(
                id=UUID(int=rnd.getrandbits(128)),
                owner=OWNERS[i % len(OWNERS)],
                title=TITLES[i % len(TITLES)],
                priority=rnd.randint(-3, 5),
                score=None if i % 5 == 0 else round(rnd.uniform(-10, 10), 3),
                tags=rnd.sample(TAGS, rnd.randint(0, 3)),
                body=None if i % 3 == 0 else rnd.choice(["body", "Body text", "", "ünï body"]),
                color=None if i % 4 == 0 else list(Color)[i % 3],
                due=None if i % 6 == 0 else date(2024, 1, 1) + timedelta(days=rnd.randint(0, 60)),
                active=i % 2 == 0,
                code=None if i % 2 else f"code-{i}",
                amount=None if i % 7 == 0 else Decimal(rnd.randint(-500, 500)) / 100,
            )
        )
    return items


def every_op_filters() -> list[Filter]:
    """At least one filter for every op on every attribute kind it applies to."""
    d = date(2024, 1, 20)
    return [
        F.owner == "ann",
        F.owner == "Ann",
        F.owner == "",
        F.owner == "ünïcode",
        F.owner != "ann",
        F.owner < "bob",
        F.owner <= "bob",
        F.owner > "Ann",
        F.owner >= "ann",
        F.owner.in_(["ann", "zoë", "nobody"]),
        F.owner.in_([]),
        F.title.contains("ell"),
        F.title.contains(""),
        F.title.contains("%"),
        F.title.contains("_"),
        F.title.icontains("HELLO"),
        F.title.icontains("ünï"),
        F.title.icontains("ÄÖÜ"),
        F.title.startswith("He"),
        F.title.startswith("a_"),
        F.title.istartswith("al"),
        F.title.endswith("ld"),
        F.title.iendswith("LD"),
        F.title.startswith(""),
        F.owner.contains("%_"),
        F.priority == 0,
        F.priority != 0,
        F.priority < 0,
        F.priority <= 1,
        F.priority > 2,
        F.priority >= 5,
        F.priority.in_([1, 2, 3]),
        F.score == None,  # noqa: E711
        F.score != None,  # noqa: E711
        F.score > 0,
        F.score <= -2.5,
        F.score.exists(),
        F.score.exists(False),
        ~(F.score > 0),
        ~(F.priority < 2),
        F.tags.contains("x"),
        F.tags.contains("X"),
        F.tags.contains(""),
        ~F.tags.contains("y"),
        F.body == None,  # noqa: E711
        F.body == "",
        F.body.exists(),
        F.body.icontains("BODY"),
        ~F.body.icontains("body"),
        F.color == Color.RED,
        F.color == "green",
        F.color != Color.BLUE,
        F.color.in_([Color.RED, Color.BLUE]),
        F.color.exists(False),
        F.due < d,
        F.due >= d,
        F.due == None,  # noqa: E711
        F.due.exists(),
        F.active == True,  # noqa: E712
        F.active == False,  # noqa: E712
        ~(F.active == True),  # noqa: E712
        F.code == "code-4",
        F.code.startswith("code-1"),
        F.code.exists(),
        F.amount > Decimal("1.5"),
        F.amount <= 0,
        F.amount.exists(False),
        F.created_at <= datetime(2100, 1, 1, tzinfo=UTC),
        F.created_at > BASE,
        (F.owner == "ann") & (F.priority >= 0),
        (F.owner == "ann") | (F.owner == "bob"),
        (F.owner == "ann") | F.title.icontains("hello"),
        ((F.priority > 0) & (F.score < 0)) | ~F.active.exists() | (F.color == Color.GREEN),
        ~((F.owner == "ann") | (F.priority < 0)),
        Not((F.owner == "bob") & F.body.exists()),
        TextQuery("hello"),
        TextQuery("ÄÖÜ"),
        TextQuery("body"),
        ALL,
        NONE,
    ]


_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "owner": st.sampled_from([*OWNERS, "a", "z"]),
    "title": st.sampled_from(TITLES),
    "priority": st.integers(-4, 6),
    "score": st.one_of(st.none(), st.floats(-11, 11, allow_nan=False).map(lambda x: round(x, 2))),
    "body": st.one_of(st.none(), st.sampled_from(["body", "Body text", "", "ünï body"])),
    "color": st.one_of(st.none(), st.sampled_from(list(Color))),
    "due": st.one_of(st.none(), st.dates(date(2023, 12, 20), date(2024, 3, 10))),
    "active": st.booleans(),
    "code": st.one_of(st.none(), st.sampled_from(["code-0", "code-12", "code-", "x"])),
}
_TEXT = st.sampled_from(["", "a", "A", "ell", "HE", "ü", "Ü", "%", "_", "o w", "ß", "bo"])


@st.composite
def _compare(draw: st.DrawFn) -> Filter:
    attr = draw(st.sampled_from(sorted(_VALUES)))
    ref = F[attr]
    value = draw(_VALUES[attr])
    ops = ["eq", "ne", "in", "exists"]
    if value is not None and attr != "active" and attr != "color":
        ops += ["lt", "lte", "gt", "gte"]
    if attr in ("owner", "title", "body", "code"):
        ops += ["contains", "icontains", "startswith", "istartswith", "endswith", "iendswith"]
    op = draw(st.sampled_from(ops))
    if op == "in":
        return ref.in_(draw(st.lists(_VALUES[attr], min_size=1, max_size=3)))
    if op == "exists":
        return ref.exists(draw(st.booleans()))
    if op in ("contains", "icontains", "startswith", "istartswith", "endswith", "iendswith"):
        method: Any = getattr(ref, op)
        text_filter: Filter = method(draw(_TEXT))
        return text_filter
    built: Filter = {
        "eq": ref == value,
        "ne": ref != value,
        "lt": ref < value,
        "lte": ref <= value,
        "gt": ref > value,
        "gte": ref >= value,
    }[op]
    return built


def _tags() -> st.SearchStrategy[Filter]:
    return st.sampled_from(TAGS).map(lambda t: F.tags.contains(t))


filters: st.SearchStrategy[Filter] = st.recursive(
    st.one_of(_compare(), _tags()),
    lambda inner: st.one_of(
        st.lists(inner, min_size=2, max_size=3).map(
            lambda fs: fs[0] & fs[1] if len(fs) == 2 else fs[0] & fs[1] & fs[2]
        ),
        st.lists(inner, min_size=2, max_size=3).map(
            lambda fs: fs[0] | fs[1] if len(fs) == 2 else fs[0] | fs[1] | fs[2]
        ),
        inner.map(lambda f: ~f),
    ),
    max_leaves=6,
)
"""Random filters over :class:`Item` (for property tests against the Python evaluator)."""
