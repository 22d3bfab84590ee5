"""Secondary indexes on Redis: what runs in Redis (explain), exact results and paging against
the Python reference for every indexed kind, unique indexes, and no index entry left behind."""

from __future__ import annotations

import dataclasses
import enum
import functools
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, cast

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.conftest import REDIS_URL

from persisty import Attr, F, Index, stored
from persisty.backends.redis import AsyncRedisDatabase, RedisDatabase
from persisty.errors import Conflict
from persisty.model import meta_of
from persisty.query import Filter, compile_filter, seek, sort_spec, validate_filter
from persisty.store import Edit, Store
from persisty.testing._concurrency import run_concurrently


class Size(enum.Enum):
    S = "s"
    M = "m"
    L = "l"


@stored(
    indexes=[
        Index("owner", "score"),
        Index("title"),
        Index("big"),
        Index("at"),
        Index("day", "size"),
        Index("amount"),
        Index("email", unique=True),
        Index("flag"),
    ]
)
class Row:
    id: int
    owner: str = ""
    title: str | None = None
    score: float | None = None
    big: int = 0
    at: datetime | None = None
    day: date | None = None
    size: Size | None = None
    amount: Decimal | None = None
    email: str | None = None
    flag: bool = False
    note: str = ""


META = meta_of(Row)
BASE = datetime(2024, 5, 1, tzinfo=UTC)
TITLES = [None, "", "a", "A", "ab", "abc", "b", "Ä", "ä", "z", "ünï", "日本", "a\x00b", "a b"]


def rows(n: int = 60) -> list[Row]:
    out = []
    for i in range(n):
        out.append(
            Row(
                id=i * 7 % n - 5,
                owner=["ann", "bob", "Ann", ""][i % 4],
                title=TITLES[i % len(TITLES)],
                score=None if i % 5 == 0 else float((i * 37) % 11) - 5.5 + (i % 2) * 0.25,
                big=(2**62 + i) if i % 3 == 0 else -i * 10**12,
                at=None if i % 6 == 0 else BASE + timedelta(hours=(i * 13) % 17),
                day=None if i % 4 == 0 else date(2024, 1, 1) + timedelta(days=i % 9),
                size=None if i % 7 == 0 else list(Size)[i % 3],
                amount=None if i % 8 == 0 else Decimal(i % 13) / 4 - 1,
                email=None if i % 2 else f"u{i}@x",
                flag=i % 3 == 0,
                note=f"n{i % 5}",
            )
        )
    return out


@pytest.fixture
def loaded(db: RedisDatabase) -> tuple[Store[Row], list[Row]]:
    store = db.store(Row)
    data = rows()
    results = store.edit_batch([Edit.create(r) for r in data])
    assert all(r.ok for r in results)
    return store, data


def expected(data: list[Row], f: Any, order: Any) -> list[Any]:
    keep = compile_filter(validate_filter(f, META), META)
    return [r.id for r in seek([r for r in data if keep(r)], sort_spec(META, order), None, None)]


def paged(store: Store[Row], f: Any, order: Any, limit: int) -> list[Any]:
    got: list[Any] = []
    page = store.search(f, order, limit=limit)
    got += [r.id for r in page.items]
    while page.next_page_key:
        page = store.search(f, order, limit=limit, page_key=page.next_page_key)
        got += [r.id for r in page.items]
    return got


FILTERS = [
    None,
    F.owner == "ann",
    F.owner == "",
    (F.owner == "bob") & (F.score > 0),
    (F.owner == "ann") & (F.score <= -1.25),
    (F.owner == "Ann") & F.score.exists(False),
    F.owner.in_(["ann", "bob"]),
    F.owner.startswith("A"),
    F.title == "a",
    F.title == None,  # noqa: E711
    F.title.startswith("a"),
    F.title.startswith(""),
    F.title > "a",
    F.title <= "b",
    (F.title >= "a") & (F.title < "b"),
    F.title.exists(),
    F.title.in_(["a", "z", None]),
    F.big > 0,
    F.big == 2**62 + 3,
    F.big < -(10**13),
    F.big.in_([2**62, 2**62 + 1]),
    F.at > BASE + timedelta(hours=5),
    F.at == None,  # noqa: E711
    F.at <= BASE + timedelta(hours=3),
    F.day == date(2024, 1, 3),
    (F.day == date(2024, 1, 2)) & (F.size == Size.M),
    F.day >= date(2024, 1, 5),
    F.size == "l",
    F.amount > Decimal("0.5"),
    F.amount == Decimal("0.25"),
    F.amount < 0,
    F.email == "u4@x",
    F.email.exists(False),
    F.flag == True,  # noqa: E712
    F.flag < True,
    F.id > 10,
    F.id.in_([1, 2, 3, 999]),
    F.id == 5,
    (F.id >= -3) & (F.id < 4),
    (F.owner == "ann") | (F.title == "a"),
    ~(F.owner == "ann"),
    F.note == "n1",
    (F.owner == "ann") & F.note.contains("1"),
    F.title.icontains("A"),
]
ORDERS = [
    None,
    [-F.score],
    [+F.score],
    [+F.title],
    [-F.title],
    [-F.big],
    [+F.at],
    [+F.owner, -F.score],
    [-F.id],
    [+F.note],
    [+F.size, -F.day],
    [-F.amount],
]


@pytest.mark.parametrize("order", ORDERS, ids=str)
def test_search_matches_reference(loaded: tuple[Store[Row], list[Row]], order: Any) -> None:
    store, data = loaded
    for f in FILTERS:
        want = expected(data, f, order)
        assert [r.id for r in store.search(f, order, limit=1000).items] == want, f
        assert paged(store, f, order, 7) == want, f
        assert store.count(f) == len(want), f


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_random_filters_and_orders(
    loaded: tuple[Store[Row], list[Row]], data: st.DataObject
) -> None:
    store, stored_rows = loaded
    # FILTERS[0] is the only None
    parts = data.draw(
        st.lists(st.sampled_from(cast("list[Filter]", FILTERS[1:])), min_size=1, max_size=3)
    )
    f = parts[0]
    for p in parts[1:]:
        f = f & p if data.draw(st.booleans()) else f | p
    order = data.draw(st.sampled_from(ORDERS))
    limit = data.draw(st.integers(1, 12))
    want = expected(stored_rows, f, order)
    assert paged(store, f, order, limit) == want
    assert store.count(f) == len(want)


def test_explain_says_what_runs_in_redis(db: RedisDatabase) -> None:
    store = db.store(Row)
    plan = store.explain(F.owner == "ann", [-F.score])
    assert "index ix_row_owner_score" in plan.detail and "ZRANGEBYLEX" in plan.detail
    assert plan.order_native and repr(plan.residual) == "ALL"
    plan = store.explain((F.title.startswith("ab")) & F.note.contains("x"))
    assert "ix_row_title" in plan.detail
    assert repr(plan.native) == repr(F.title.startswith("ab"))
    assert repr(plan.residual) == repr(F.note.contains("x"))
    plan = store.explain(F.big > 5)
    assert "ix_row_big" in plan.detail
    plan = store.explain(F.at <= BASE)
    assert "ix_row_at" in plan.detail
    plan = store.explain(F.note == "n1")  # no index on note: scan the key set in key order
    assert plan.detail.startswith("redis scan in key order")
    assert repr(plan.native) == "ALL"
    plan = store.explain(F.note == "n1", [+F.note])  # nothing to page in order: SCAN
    assert plan.detail.startswith("redis scan: SCAN MATCH")
    assert repr(plan.native) == "ALL" and not plan.order_native
    plan = store.explain(None, [-F.big])
    assert "ix_row_big" in plan.detail and plan.order_native
    plan = store.explain(None, None)
    assert "~keys" in plan.detail and "scan in key order" in plan.detail
    plan = store.explain(F.id == 3)
    assert plan.detail.startswith("redis key lookup")
    plan = store.explain((F.owner == "a") | (F.title == "b"))
    assert "scan" in plan.detail and repr(plan.native) == "ALL"  # an Or is never split


def test_unique_index(db: RedisDatabase) -> None:
    store = db.store(Row)
    store.create(Row(id=1, email="a@x"))
    with pytest.raises(Conflict) as e:
        store.create(Row(id=2, email="a@x"))
    assert e.value.field == "email"
    store.create(Row(id=2, email=None))
    store.create(Row(id=3, email=None))  # None is never a duplicate
    store.patch("1", {"email": "b@x"})
    store.create(Row(id=4, email="a@x"))  # released by the patch
    with pytest.raises(Conflict):
        store.patch("2", {"email": "b@x"})
    store.delete("1")
    store.patch("2", {"email": "b@x"})  # released by the delete
    # swapping values inside one atomic batch works; a clash inside it aborts everything
    results = store.edit_batch(
        [
            Edit.patch("2", {"email": "tmp"}),
            Edit.patch("4", {"email": "b@x"}),
            Edit.patch("2", {"email": "a@x"}),
        ]
    )
    assert all(r.ok for r in results)
    results = store.edit_batch(
        [Edit.create(Row(id=9, email="new@x")), Edit.create(Row(id=10, email="new@x"))]
    )
    assert [r.code for r in results] == ["aborted", "conflict"]
    assert store.read("9") is None
    assert store.count(F.email == "new@x") == 0


def test_unique_index_under_concurrency(db: RedisDatabase) -> None:
    store = db.store(Row)

    def worker(i: int) -> bool:
        try:
            store.create(Row(id=100 + i, email="race@x"))
            return True
        except Conflict:
            return False

    results = run_concurrently([functools.partial(worker, i) for i in range(8)])
    assert sum(results) == 1
    assert store.count(F.email == "race@x") == 1


def test_failed_atomic_batch_writes_nothing(db: RedisDatabase) -> None:
    store = db.store(Row)
    store.create(Row(id=1, owner="ann", email="e1"))
    before = _keys(db)
    snapshot = {k: _dump(db, k) for k in before}
    results = store.edit_batch(
        [
            Edit.create(Row(id=2, owner="bob")),
            Edit.patch("1", {"owner": "carl", "score": 3.0}),
            Edit.create(Row(id=3, email="e1")),  # unique clash: everything rolls back
        ]
    )
    assert [r.code for r in results] == ["aborted", "aborted", "conflict"]
    assert _keys(db) == before
    assert {k: _dump(db, k) for k in before} == snapshot


def test_no_index_entries_left_behind(db: RedisDatabase) -> None:
    store = db.store(Row)
    data = rows(30)
    store.edit_batch([Edit.create(r) for r in data])
    for r in data[:10]:
        store.update(dataclasses.replace(r, owner="zed", title="changed", score=1.0))
    store.update_all(F.owner == "bob", {"title": "x", "email": None})
    assert store.delete_all(None) == 30
    left = _keys(db)
    assert left == {f"persisty:{{{db.namespace}:row}}:v".encode()}, (
        "only the index version is left: every item, index, shadow and unique entry is gone"
    )


def test_indexes_survive_key_kinds(db: RedisDatabase) -> None:
    @stored(key=("owner", "n"), indexes=[Index("tag")])
    class Doc:
        owner: str
        n: int
        tag: str | None = None

    store = db.store(Doc)
    docs = [
        Doc(owner=o, n=n, tag=t)
        for o in ("a", "a:b", "b~")
        for n in (10, 9, -1, 100)
        for t in ("x",)
    ]
    store.edit_batch([Edit.create(d) for d in docs])
    got = [(d.owner, d.n) for d in store.search(F.owner == "a", limit=100).items]
    assert got == [("a", -1), ("a", 9), ("a", 10), ("a", 100)]
    got = [(d.owner, d.n) for d in store.search((F.owner == "a:b") & (F.n > 9)).items]
    assert got == [("a:b", 10), ("a:b", 100)]
    assert "~keys" in store.explain(F.owner == "b~").detail
    assert store.count(F.tag == "x") == 12
    ordered = sorted(docs, key=lambda d: (d.owner, d.n))
    assert [d.n for d in paged_docs(store)] == [d.n for d in ordered]


def paged_docs(store: Any) -> list[Any]:
    out = []
    page = store.search(None, None, limit=5)
    out += page.items
    while page.next_page_key:
        page = store.search(None, None, limit=5, page_key=page.next_page_key)
        out += page.items
    return out


def _keys(db: RedisDatabase) -> set[bytes]:
    pattern = f"persisty:{{{db.namespace}:*".encode()
    return set(db.client.scan_iter(match=pattern, count=1000))


def _dump(db: RedisDatabase, key: bytes) -> Any:
    kind = db.client.type(key)
    if kind == b"string":
        return db.client.get(key)
    if kind == b"zset":
        return db.client.zrange(key, 0, -1)
    if kind == b"hash":
        return db.client.hgetall(key)
    return kind


def test_uuid_keys_sort_like_python(db: RedisDatabase) -> None:
    @stored
    class U:
        id: uuid.UUID = Attr(generated="uuid", default=None)  # what a bare UUID key gets
        v: int = 0

    store = db.store(U)
    made = [store.create(U(v=i)) for i in range(20)]
    assert [u.id for u in paged_docs(store)] == sorted(u.id for u in made)


def test_changed_indexes_are_rebuilt(db: RedisDatabase) -> None:
    @stored(name="evolving", indexes=[Index("a")])
    class V1:
        id: str
        a: str = ""
        b: int = 0

    @stored(name="evolving", indexes=[Index("b"), Index("a", unique=True)])
    class V2:
        id: str
        a: str = ""
        b: int = 0

    old = db.store(V1)
    old.edit_batch([Edit.create(V1(id=f"k{i}", a=f"a{i}", b=i % 3)) for i in range(25)])
    planner = persisty_connect(db)
    try:
        planner.store(V2)
        assert planner.plan_migration() == [
            "REINDEX evolving (25 item(s); indexes: ix_evolving_b, ix_evolving_a);"
        ]
        assert planner.plan_migration() != []  # planning changes nothing
        assert planner.migrate() == [
            "redis: re-indexed 25 evolving item(s) for indexes ix_evolving_b, ix_evolving_a"
        ]
    finally:
        planner.close()
    other = persisty_connect(db)
    try:
        new = other.store(V2)
        assert "ix_evolving_b" in new.explain(F.b == 1).detail
        assert sorted(v.id for v in new.search(F.b == 1, limit=100).items) == sorted(
            f"k{i}" for i in range(25) if i % 3 == 1
        )
        assert new.count(F.a == "a3") == 1
        with pytest.raises(Conflict):
            new.create(V2(id="dup", a="a3"))
        assert other.migrate() == []  # already done on first use
        assert other.plan_migration() == []
    finally:
        other.close()
    keys = {k.split(b":x:")[-1] for k in _keys(db) if b":x:" in k}
    assert keys == {b"~keys", b"ix_evolving_b", b"ix_evolving_a"}
    assert db.client.zcard(f"persisty:{{{db.namespace}:evolving}}:x:ix_evolving_a") == 25


def persisty_connect(db: RedisDatabase) -> RedisDatabase:
    import persisty

    other = persisty.connect(REDIS_URL, namespace=db.namespace)
    assert isinstance(other, RedisDatabase)
    return other


@pytest.mark.parametrize("atomic", [True, False])
def test_same_key_several_times_in_one_batch(db: RedisDatabase, atomic: bool) -> None:
    store = db.store(Row)
    store.create(Row(id=1, owner="p", email="one"))
    results = store.edit_batch(
        [
            Edit.create(Row(id=50, owner="q", score=1.0, email="e50")),
            Edit.patch("50", {"owner": "r"}),
            Edit.patch("1", {"email": "free"}),
            Edit.patch("50", {"score": 2.0, "email": "one"}),
            Edit.delete("1"),
            Edit.create(Row(id=1, owner="p2", email="e50")),
        ],
        atomic=atomic,
    )
    assert all(r.ok for r in results), results
    assert store.search(F.owner == "q").items == []
    assert [(r.id, r.score, r.email) for r in store.search(F.owner == "r").items] == [
        (50, 2.0, "one")
    ]
    assert [r.id for r in store.search(F.email == "e50").items] == [1]
    assert store.count(F.owner == "p") == 0 and store.count(F.owner == "p2") == 1
    for name in [b"~keys", b"ix_row_owner_score", b"ix_row_email", b"ix_row_title"]:
        key = f"persisty:{{{db.namespace}:row}}:x:".encode() + name
        assert db.client.zcard(key) == 2, name


async def test_unique_index_under_concurrency_async(adb: AsyncRedisDatabase) -> None:
    from persisty.testing._concurrency import run_concurrently_async

    store = adb.store(Row)

    async def worker(i: int) -> bool:
        try:
            await store.create(Row(id=200 + i, email="race@x"))
            return True
        except Conflict:
            return False

    results = await run_concurrently_async([functools.partial(worker, i) for i in range(8)])
    assert sum(results) == 1
    assert await store.count(F.email == "race@x") == 1
    page = await store.search(F.email.exists(), order=[-F.email], limit=5)
    assert [r.email for r in page.items] == ["race@x"]
