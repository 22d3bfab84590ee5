"""DynamoDB-specific behaviour on moto_server (127.0.0.1): request economy counted with
botocore's event hooks, exact round trips, order-preserving key bytes, limits and planning.
Without AWS_ENDPOINT_URL (set by scripts/services) these tests fail, never skip."""

from __future__ import annotations

import dataclasses
import decimal
import uuid
from collections import Counter as Tally
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.conformance.test_dynamodb import dynamodb_url

import persisty
import persisty.aio
from persisty import F
from persisty.backends.dynamodb import AsyncDynamoDatabase, DynamoDatabase
from persisty.backends.dynamodb._codec import order_bytes
from persisty.errors import ValidationError
from persisty.model import Attr, Index, etag, stored
from persisty.query import ALL
from persisty.store import Edit


@stored(indexes=[Index("owner", "score"), Index("kind")])
class Thing:
    id: str
    owner: str
    kind: str = ""
    score: int | None = None
    ratio: float | None = None
    amount: Decimal | None = None
    labels: set[str] = Attr(default_factory=set)
    blob: bytes | None = None
    note: str = ""
    seen: date | None = None


@stored(key=("owner", "slug"))
class Page:
    owner: str
    slug: str
    n: int = 0


@pytest.fixture
def db() -> Iterator[DynamoDatabase]:
    database = persisty.connect(dynamodb_url(), namespace="d" + uuid.uuid4().hex[:10], segments=2)
    assert isinstance(database, DynamoDatabase)
    try:
        yield database
    finally:
        database.drop()
        database.close()


class Calls:
    """Counts DynamoDB API calls by name through botocore's before-call event."""

    def __init__(self) -> None:
        self.tally: Tally[str] = Tally()

    def __call__(self, model: Any, **kwargs: Any) -> None:
        self.tally[model.name] += 1


def counted(db: DynamoDatabase) -> Calls:
    calls = Calls()
    db.client.raw().meta.events.register("before-call.dynamodb", calls)
    return calls


def test_search_on_an_index_is_one_query_per_page(db: DynamoDatabase) -> None:
    things = db.store(Thing)
    things.edit_batch(
        [
            Edit.create(
                Thing(id=f"t{i:03d}", owner="ann" if i % 2 else "bob", kind=f"k{i % 3}", score=i)
            )
            for i in range(90)
        ],
        atomic=False,
    )
    calls = counted(db)
    # equality on a GSI partition key, ordered by its sort key: native, one Query per page
    pages = 0
    page_key = None
    seen: list[Thing] = []
    while True:
        page = things.search(F.owner == "ann", order=[-F.score], limit=10, page_key=page_key)
        pages += 1
        seen += page.items
        page_key = page.next_page_key
        if page_key is None:
            break
    assert [t.score for t in seen] == sorted((i for i in range(90) if i % 2), reverse=True)
    assert calls.tally == {"Query": pages}
    # equality on a single-attribute GSI, default order (by key, sorted in Python)
    calls.tally.clear()
    page = things.search(F.kind == "k1", limit=100)
    assert len(page.items) == 30 and calls.tally == {"Query": 1}
    calls.tally.clear()
    assert things.count(F.owner == "bob") == 45
    assert calls.tally == {"Query": 1}
    plan = things.explain(F.owner == "ann", [-F.score])
    assert plan.order_native and "Query on GSI" in plan.detail


def test_read_batch_of_250_keys_is_three_batch_gets(db: DynamoDatabase) -> None:
    things = db.store(Thing)
    things.edit_batch(
        [Edit.create(Thing(id=f"t{i:03d}", owner="o")) for i in range(250)], atomic=False
    )
    calls = counted(db)
    keys = [f"t{i:03d}" for i in range(250)]
    got = things.read_batch(keys)
    assert [t.id for t in got if t] == keys
    assert calls.tally == {"BatchGetItem": 3}


def test_bulk_create_is_batch_writes_in_25s(db: DynamoDatabase) -> None:
    things = db.store(Thing)
    things.count()  # the table exists
    calls = counted(db)
    results = things.edit_batch(
        [Edit.create(Thing(id=f"t{i}", owner="o")) for i in range(60)], atomic=False
    )
    assert all(r.ok for r in results)
    assert calls.tally == {"BatchGetItem": 1, "BatchWriteItem": 3}
    again = things.edit_batch(
        [Edit.create(Thing(id="t1", owner="x")), Edit.create(Thing(id="new", owner="x"))],
        atomic=False,
    )
    assert [r.code for r in again] == ["conflict", None]
    assert things.read("t1").owner == "o"  # type: ignore[union-attr]


async def test_async_request_economy() -> None:
    db = persisty.aio.connect(dynamodb_url(), namespace="a" + uuid.uuid4().hex[:10])
    assert isinstance(db, AsyncDynamoDatabase)
    try:
        things = db.store(Thing)
        await things.edit_batch(
            [Edit.create(Thing(id=f"t{i:03d}", owner="o", score=i)) for i in range(250)],
            atomic=False,
        )
        calls = Calls()
        (await db.client.raw()).meta.events.register("before-call.dynamodb", calls)
        got = await things.read_batch([f"t{i:03d}" for i in range(250)])
        assert all(got)
        assert calls.tally == {"BatchGetItem": 3}
        calls.tally.clear()
        page = await things.search(F.owner == "o", order=[+F.score], limit=20)
        assert len(page.items) == 20 and calls.tally == {"Query": 1}
    finally:
        await db.drop()
        await db.close()


def test_exact_round_trips(db: DynamoDatabase) -> None:
    things = db.store(Thing)
    values = [
        Thing(
            id="a",
            owner="",
            kind="",
            note="",
            ratio=0.1,
            amount=Decimal("1.20"),
            labels={"x", "y", ""},
            blob=b"",
            score=0,
            seen=date(1, 1, 1),
        ),
        Thing(
            id="b", owner="o", ratio=-0.0, amount=Decimal("1E+2"), blob=b"\x00\xff", labels=set()
        ),
        Thing(id="c", owner="o", ratio=1e-100, amount=Decimal("-0.000"), score=-(10**37)),
        Thing(
            id="d",
            owner="o",
            ratio=1.5e125,
            amount=Decimal("12345678901234567890.123456789012345678"),
        ),
    ]
    for t in values:
        created = things.create(t)
        got = things.read(t.id)
        assert got == created and etag(got) == etag(created), t.id
    # empty strings are fine in indexed attributes (the GSI keys are encoded)
    assert [t.id for t in things.search(F.owner == "").items] == ["a"]
    assert [t.id for t in things.search(F.kind == "").items] == ["a", "b", "c", "d"]


def test_numbers_dynamodb_cannot_hold(db: DynamoDatabase) -> None:
    things = db.store(Thing)
    with pytest.raises(ValidationError) as e:
        things.create(Thing(id="x", owner="o", amount=Decimal("1" * 39)))
    assert e.value.field == "amount" and "38" in e.value.message
    with pytest.raises(ValidationError) as e:
        things.create(Thing(id="x", owner="o", ratio=1e-300))
    assert e.value.field == "ratio" and "range" in e.value.message
    assert things.read("x") is None


def test_item_over_400_kb(db: DynamoDatabase) -> None:
    things = db.store(Thing)
    with pytest.raises(ValidationError) as e:
        things.create(Thing(id="big", owner="o", note="x" * 420_000))
    assert "400 KB" in e.value.message and "420," in e.value.message
    assert things.read("big") is None
    results = things.edit_batch(
        [
            Edit.create(Thing(id="ok", owner="o")),
            Edit.create(Thing(id="big", owner="o", blob=b"x" * 500_000)),
        ]
    )
    assert [r.code for r in results] == ["aborted", "validation_error"]
    assert things.count() == 0


def test_atomic_batches_hold_at_most_100_edits(db: DynamoDatabase) -> None:
    things = db.store(Thing)
    with pytest.raises(ValidationError) as e:
        things.edit_batch([Edit.create(Thing(id=f"t{i}", owner="o")) for i in range(101)])
    assert "100" in e.value.message
    assert things.count() == 0
    calls = counted(db)
    results = things.edit_batch([Edit.create(Thing(id=f"t{i}", owner="o")) for i in range(100)])
    assert all(r.ok for r in results)
    assert calls.tally == {"TransactWriteItems": 1}


def test_composite_keys_query_the_partition(db: DynamoDatabase) -> None:
    pages = db.store(Page)
    pages.edit_batch(
        [
            Edit.create(Page(owner=o, slug=f"s{i:02d}", n=i))
            for o in ("ann", "bob")
            for i in range(30)
        ],
        atomic=False,
    )
    calls = counted(db)
    got = pages.search(F.owner == "ann", order=[-F.slug], limit=5)
    assert [p.slug for p in got.items] == ["s29", "s28", "s27", "s26", "s25"]
    got = pages.search((F.owner == "bob") & (F.slug >= "s10") & (F.slug < "s13"))
    assert [p.slug for p in got.items] == ["s10", "s11", "s12"]
    got = pages.search((F.owner == "bob") & F.slug.startswith("s2"), limit=3)
    assert [p.slug for p in got.items] == ["s20", "s21", "s22"]
    assert calls.tally == {"Query": 3}
    plan = pages.explain((F.owner == "bob") & F.slug.istartswith("S2"))
    assert "Query on the table" in plan.detail and plan.residual != ALL


def test_an_or_is_never_split(db: DynamoDatabase) -> None:
    things = db.store(Thing)
    things.edit_batch(
        [
            Edit.create(
                Thing(id=f"t{i}", owner="ann" if i < 5 else "bob", note="Hello" if i % 2 else "bye")
            )
            for i in range(10)
        ],
        atomic=False,
    )
    f = (F.owner == "ann") | F.note.icontains("HELLO")
    plan = things.explain(f)
    assert plan.residual == f  # icontains runs in Python, so the whole Or does
    got = {t.id for t in things.search(f).items}
    assert got == {"t0", "t1", "t2", "t3", "t4", "t5", "t7", "t9"}
    g = (F.owner == "ann") | (F.note == "Hello")
    assert things.explain(g).residual == ALL
    assert {t.id for t in things.search(g).items} == got


def test_python_sorting_is_bounded() -> None:
    db = persisty.connect(dynamodb_url(), namespace="s" + uuid.uuid4().hex[:10], max_sort=20)
    try:
        things = db.store(Thing)
        things.edit_batch(
            [Edit.create(Thing(id=f"t{i:02d}", owner="o", note=str(i))) for i in range(30)],
            atomic=False,
        )
        with pytest.raises(ValidationError) as e:
            things.search(order=[+F.note], limit=5)
        assert e.value.field == "order" and "20" in e.value.message
        # a native order is not bounded; counts, update_all and delete_all are not either
        assert len(things.search(F.owner == "o", order=[+F.score], limit=25).items) == 25
        assert things.count() == 30
        assert things.update_all(None, {"kind": "z"}) == 30
        assert things.delete_all(F.kind == "z") == 30
    finally:
        db.drop()
        db.close()


def test_migrate_creates_tables_and_new_gsis(db: DynamoDatabase) -> None:
    @stored(name="evolving")
    class V1:
        id: str
        tag: str = ""

    @stored(name="evolving", indexes=[Index("tag")])
    class V2:
        id: str
        tag: str = ""

    first = db.store(V1)
    done = db.migrate()
    assert any("created table" in d for d in done)
    first.edit_batch(
        [Edit.create(V1(id=f"i{i}", tag="x" if i % 2 else "y")) for i in range(10)], atomic=False
    )
    other = persisty.connect(dynamodb_url(), namespace=db.namespace)
    try:
        second = other.store(V2)
        done = other.migrate()
        assert any("created GSI" in d for d in done) and any("re-indexed 10" in d for d in done)
        assert "Query on GSI" in second.explain(F.tag == "x").detail
        assert sorted(t.id for t in second.search(F.tag == "x").items) == [
            "i1",
            "i3",
            "i5",
            "i7",
            "i9",
        ]
    finally:
        other.close()


def test_url_options_and_missing_settings() -> None:
    with pytest.raises(ValidationError) as e:
        persisty.connect("dynamodb://?regoin=x")
    assert "regoin" in e.value.message


# ---- order-preserving key bytes (what makes native ordering and ranges exact) ----------

_scalars = st.one_of(
    st.tuples(st.just("int"), st.integers(-(10**40), 10**40)),
    st.tuples(st.just("float"), st.floats(allow_nan=False, allow_infinity=False)),
    st.tuples(st.just("dec"), st.decimals(allow_nan=False, allow_infinity=False)),
    st.tuples(st.just("str"), st.text()),
    st.tuples(st.just("bytes"), st.binary()),
    st.tuples(st.just("dt"), st.datetimes(timezones=st.just(UTC))),
    st.tuples(st.just("uuid"), st.uuids()),
)


@settings(max_examples=400, deadline=None)
@given(a=_scalars, b=_scalars)
def test_order_bytes_preserve_python_order(a: tuple[str, Any], b: tuple[str, Any]) -> None:
    numeric = {"int", "float", "dec"}
    if a[0] != b[0] and not (a[0] in numeric and b[0] in numeric):
        return
    x, y = a[1], b[1]
    bx, by = order_bytes(x), order_bytes(y)
    assert (x < y) == (bx < by) and (x == y) == (bx == by)
    assert order_bytes(None) < bx
    # prefix-free: concatenations order by their first differing component
    if x < y:
        assert bx + order_bytes("zzz") < by + order_bytes("")


def test_datetime_text_orders_like_time() -> None:
    a = datetime(2024, 1, 1, tzinfo=UTC)
    b = a.replace(microsecond=1)
    assert order_bytes(a) < order_bytes(b)


def test_dataclass_fields_are_what_is_stored() -> None:
    assert {f.name for f in dataclasses.fields(Thing)} >= {"id", "owner", "labels"}


@pytest.mark.parametrize("desc", [False, True])
def test_native_paging_with_ties_and_ranges(db: DynamoDatabase, desc: bool) -> None:
    things = db.store(Thing)
    things.edit_batch(
        [
            Edit.create(Thing(id=f"t{i:02d}", owner="o", score=None if i % 7 == 0 else i % 5))
            for i in range(50)
        ],
        atomic=False,
    )
    everything = things.search(F.owner == "o", limit=1000).items

    def expected(f: Any) -> list[str]:
        from persisty.query import compile_filter, seek, sort_spec, validate_filter

        meta = things.meta
        keep = compile_filter(validate_filter(f, meta), meta)
        spec = sort_spec(meta, [-F.score if desc else +F.score])
        return [t.id for t in seek([t for t in everything if keep(t)], spec, None, None)]

    for f in (
        F.owner == "o",
        (F.owner == "o") & (F.score >= 2),
        (F.owner == "o") & (F.score < 3) & (F.score > 0),
        (F.owner == "o") & (F.score > 9),
    ):
        got: list[str] = []
        page_key = None
        while True:
            page = things.search(
                f, order=[-F.score if desc else +F.score], limit=7, page_key=page_key
            )
            got += [t.id for t in page.items]
            page_key = page.next_page_key
            if page_key is None:
                break
        assert got == expected(f), f
        assert things.explain(f, [-F.score if desc else +F.score]).order_native


# ---- the item codec alone (no server): exact round trips for random values --------------

_WIDE = decimal.Context(prec=60)
_finite = st.floats(allow_nan=False, allow_infinity=False).filter(
    lambda x: x == 0 or 1e-120 < abs(x) < 1e120
)
_decimals = st.decimals(allow_nan=False, allow_infinity=False, places=None).filter(
    lambda d: (
        d.is_zero()
        or (
            len(d.normalize(_WIDE).as_tuple().digits) <= 38
            and Decimal("1e-120") < abs(d) < Decimal("1e120")
        )
    )
)
_things = st.builds(
    Thing,
    id=st.text(min_size=1),
    owner=st.text(),
    kind=st.text(),
    score=st.none() | st.integers(-(10**30), 10**30),
    ratio=st.none() | _finite,
    amount=st.none() | _decimals,
    labels=st.sets(st.text(max_size=5), max_size=4),
    blob=st.none() | st.binary(),
    note=st.text(),
    seen=st.none() | st.dates(),
)


def _as_dynamodb_returns(av: Any) -> Any:
    """What DynamoDB gives back: numbers normalized (``1.20`` -> ``1.2``, ``1E+2`` -> ``100``)."""
    if isinstance(av, dict):
        if set(av) == {"N"}:
            d = Decimal(av["N"])
            return {"N": "0" if d.is_zero() else format(d.normalize(_WIDE), "f")}
        return {k: _as_dynamodb_returns(v) for k, v in av.items()}
    if isinstance(av, list):
        return [_as_dynamodb_returns(x) for x in av]
    return av


@settings(max_examples=200, deadline=None)
@given(thing=_things)
def test_codec_round_trips_exactly(thing: Thing) -> None:
    from persisty.backends.dynamodb._codec import Codec
    from persisty.model import meta_of

    meta = meta_of(Thing)
    item = meta.validate(thing)
    codec = Codec(meta)
    loaded, tag = codec.load(_as_dynamodb_returns(codec.dump(item, etag(item))))
    assert loaded == item and tag == etag(item) == etag(loaded)


def test_expiring_items_carry_the_tables_ttl_attribute(db: DynamoDatabase) -> None:
    from persisty.testing.models import Lease

    leases = db.store(Lease)
    until = datetime(2040, 1, 2, 3, 4, 5, tzinfo=UTC)
    leases.create(Lease(id="a", expires_at=until))
    table = leases.table  # type: ignore[attr-defined]
    client = leases.client  # type: ignore[attr-defined]
    ttl = client.call("describe_time_to_live", TableName=table)["TimeToLiveDescription"]
    assert ttl["AttributeName"] == "~t" and ttl["TimeToLiveStatus"] in ("ENABLED", "ENABLING")
    raw = client.call("scan", TableName=table)["Items"]
    assert [int(r["~t"]["N"]) for r in raw] == [int(until.timestamp()) + 1]
    assert leases.read("a").expires_at == until  # type: ignore[union-attr]
