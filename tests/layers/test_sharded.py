"""The sharding layer on every engine: a Person sharded four ways (birth_details, location,
location.geolocation, locations[]) round-trips, writes only the rows that changed, never
leaves an orphan or a partial item, and reports damage as ``IntegrityError``."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from tests.conftest import DYNAMODB_URL
from tests.layers.sharded_models import (
    DOB,
    ENGINE_IDS,
    FOUR_WAYS,
    LEAVES,
    PLAIN,
    URLS,
    Birth,
    Location,
    Person,
    flipped,
    person,
    stale_child_deletes,
    url_of,
)

import persisty
import persisty.aio
from persisty.errors import Conflict, IntegrityError, PreconditionFailed, ValidationError
from persisty.layers import shard_model, sharded
from persisty.model import etag, meta_of
from persisty.query import F
from persisty.store import Database, Edit

ROWS = shard_model(Person, FOUR_WAYS)
SHARDS = {p.text: p for p in ROWS.__persisty_shards__}


@pytest.fixture(params=URLS, ids=ENGINE_IDS)
def db(request: Any) -> Iterator[Database]:
    database = persisty.connect(url_of(request.param), namespace="s" + uuid.uuid4().hex[:10])
    try:
        yield database
    finally:
        try:
            database.drop()
        finally:
            database.close()


def _rows(db: Database, path: str) -> list[Any]:
    return list(db.store(SHARDS[path].cls).search_all())


def test_round_trip_and_one_row_per_shard(db: Database) -> None:
    people = sharded(db.store(ROWS), FOUR_WAYS)
    p = people.create(person())
    assert people.read("p1") == p and etag(people.read("p1")) == etag(p)
    parent = db.store(ROWS).read("p1")
    assert parent is not None and parent.location is None and parent.birth_details is None
    assert {path: len(_rows(db, path)) for path in FOUR_WAYS} == {
        "birth_details": 1,
        "location": 1,
        "location.geolocation": 1,
        "locations[]": 2,
    }
    for city in ("Tokyo", "Kyoto", "Sapporo"):
        before = etag(people.read("p1"))
        new = people.write_path("p1", "location.city", city)
        assert new.location is not None and new.location.city == city
        assert etag(new) != before
    assert {path: len(_rows(db, path)) for path in FOUR_WAYS} == {
        "birth_details": 1,
        "location": 1,
        "location.geolocation": 1,
        "locations[]": 2,
    }
    assert people.read("p1") == new
    assert people.read_path("p1", "location.geolocation.latitude") == 34.7
    shrunk = people.patch("p1", {"locations": [{"city": "A", "country": "B"}]})
    assert shrunk.locations == [Location("A", "B")]
    assert len(_rows(db, "locations[]")) == 1  # the second element's row is gone
    with pytest.raises(PreconditionFailed):
        people.write_path("p1", "name", "x", if_match=etag(p))
    got = people.read_batch(["p1", "nobody"])
    assert got == [shrunk, None]
    assert people.search(F.name == "Ann").items == [shrunk]
    people.delete("p1")
    assert people.read("p1") is None
    assert all(_rows(db, path) == [] for path in FOUR_WAYS)


def test_a_failed_parent_write_changes_no_child_row(db: Database) -> None:
    people = sharded(db.store(ROWS), FOUR_WAYS)
    first = people.create(person())
    rows = {path: _rows(db, path) for path in FOUR_WAYS}
    other = dataclasses.replace(
        person(),
        birth_details=Birth("Elsewhere", first.birth_details.dob),
        locations=[],
    )
    with pytest.raises(Conflict):  # the parent insert fails after the item was validated
        people.create(other)
    assert {path: _rows(db, path) for path in FOUR_WAYS} == rows
    assert people.read("p1") == first


def test_filters_on_sharded_paths_are_refused(db: Database) -> None:
    people = sharded(db.store(ROWS), FOUR_WAYS)
    for f in (F.birth_details == None, F["location"] == None):  # noqa: E711
        with pytest.raises(ValidationError) as e:
            people.search(f)
        assert e.value.field in ("birth_details", "location")
    with pytest.raises(ValidationError) as e:
        people.search(None, order=[+F.locations])
    assert e.value.field == "locations"


def test_damaged_rows_raise_integrity_error(db: Database) -> None:
    people = sharded(db.store(ROWS), FOUR_WAYS)
    people.create(person("a"))
    people.create(dataclasses.replace(person("b"), birth_details=Birth("B", DOB)))
    births = db.store(SHARDS["birth_details"].cls)
    row_a = births.read("a")
    assert row_a is not None
    births.put(dataclasses.replace(row_a, parent="b"))  # A's birth row copied under B
    with pytest.raises(IntegrityError) as e:
        people.read("b")
    assert e.value.field == "birth_details"
    assert people.read("a") is not None


def test_a_row_naming_a_class_is_read_as_data(db: Database) -> None:
    people = sharded(db.store(ROWS), FOUR_WAYS)
    people.create(person())
    births, rows = db.store(SHARDS["birth_details"].cls), db.store(ROWS)
    hostile = births.put(
        meta_of(SHARDS["birth_details"].cls).from_builtins(
            {
                "parent": "p1",
                "value": {
                    "__class__": "system",
                    "__module__": "os",
                    "hospital": "H",
                    "dob": "1990-01-02",
                },
            }
        )
    )
    parent = rows.read("p1")
    assert parent is not None
    rows.update(
        dataclasses.replace(
            parent, shard_tags={**parent.shard_tags, "birth_details": etag(hostile)}
        )
    )
    got = people.read("p1")
    assert got is not None and got.birth_details == Birth("H", person().birth_details.dob)  # type: ignore[union-attr]


def test_a_batch_is_one_commit(db: Database) -> None:
    people = sharded(db.store(ROWS), FOUR_WAYS)
    people.create(person("a"))
    results = people.edit_batch([Edit.create(person("b")), Edit.create(person("a"))], atomic=True)
    assert [r.code for r in results] == ["aborted", "conflict"]
    results = people.edit_batch([Edit.patch("a", {"name": "A"}), Edit.patch("a", {"name": "B"})])
    assert results[0].code in ("validation_error", "aborted")  # one item twice: refused
    assert people.read("b") is None and people.read("a").name == "Ann"  # type: ignore[union-attr]
    results = people.edit_batch(
        [
            Edit.create(person("b")),
            Edit.patch("a", {"name": "A"}),
            Edit.patch("b", {"friends": []}),
        ],
        atomic=False,
    )
    assert all(r.ok for r in results), results
    assert people.count() == 2 and len(_rows(db, "birth_details")) == 2


def test_separate_counters_of_one_item(db: Database) -> None:
    from persisty.testing._concurrency import run_concurrently

    people = sharded(db.store(ROWS), FOUR_WAYS)
    people.create(person())
    rounds = 25

    def worker(n: int) -> None:
        for i in range(1, rounds + 1):
            people.write_path("p1", f"counters.c{n}", i)

    run_concurrently([lambda n=n: worker(n) for n in range(8)])  # type: ignore[misc]
    final = people.read("p1")
    assert final is not None and final.counters == {f"c{n}": rounds for n in range(8)}
    assert {path: len(_rows(db, path)) for path in FOUR_WAYS}["locations[]"] == 2


@pytest.mark.parametrize("url", URLS, ids=ENGINE_IDS)
async def test_async_round_trip(url: str) -> None:
    from persisty.testing._concurrency import run_concurrently_async

    database = persisty.aio.connect(url_of(url), namespace="s" + uuid.uuid4().hex[:10])
    try:
        people = sharded(database.store(ROWS), FOUR_WAYS)
        p = await people.create(person())
        assert await people.read("p1") == p
        new = await people.write_path("p1", "birth_details.hospital", "X")
        assert new.birth_details is not None and new.birth_details.hospital == "X"
        births = database.store(SHARDS["birth_details"].cls)
        assert len([r async for r in births.search_all()]) == 1

        async def worker(n: int) -> None:
            for i in range(1, 6):
                await people.write_path("p1", f"counters.c{n}", i)

        await run_concurrently_async([lambda n=n: worker(n) for n in range(4)])  # type: ignore[misc]
        got = await people.read("p1")
        assert got is not None and got.counters == {f"c{n}": 5 for n in range(4)}
        assert (await people.read_batch(["p1", "x"]))[0] == got
        results = await people.edit_batch([Edit.create(person("p2")), Edit.delete("p1")])
        assert all(r.ok for r in results), results
        assert await people.read("p1") is None and await people.count() == 1
        await people.delete("p2")
        assert [r async for r in births.search_all()] == []
    finally:
        try:
            await database.drop()
        finally:
            await database.close()


def test_the_model_must_be_the_shard_model() -> None:
    database = persisty.connect("memory://")
    with pytest.raises(ValidationError):
        sharded(database.store(Person), FOUR_WAYS)
    with pytest.raises(ValidationError):
        sharded(database.store(ROWS), {"location": "elsewhere"})
    with pytest.raises(ValidationError):
        shard_model(Person, {"name[]": "x"})
    with pytest.raises(ValidationError):
        shard_model(Person, {"id": "x"})


def test_dynamodb_big_parts_fit_in_shards() -> None:
    database = persisty.connect(
        DYNAMODB_URL or "dynamodb://", namespace="s" + uuid.uuid4().hex[:10]
    )
    try:
        big = dataclasses.replace(
            person(),
            birth_details=Birth("h" * 250_000, person().birth_details.dob),  # type: ignore[union-attr]
            location=Location("c" * 250_000, "JP"),
        )
        people = sharded(database.store(ROWS), FOUR_WAYS)
        assert people.create(big) == big
        assert people.read("p1") == big
        plain = persisty.connect(
            DYNAMODB_URL or "dynamodb://", namespace="s" + uuid.uuid4().hex[:10]
        )
        try:
            with pytest.raises(ValidationError) as e:  # the same item in one row: too big
                plain.store(Person).create(big)
        finally:
            plain.drop()
            plain.close()
        assert "bytes" in str(e.value) and "400 KB" in str(e.value)
        huge = dataclasses.replace(big, location=Location("c" * 450_000, "JP"), id="p2")
        with pytest.raises(ValidationError) as e:  # one part still too big: named, sized
            people.create(huge)
        assert "person_location" in str(e.value) and "bytes" in str(e.value)
        assert people.read("p2") is None
        assert all(
            r.parent == "p1"
            for path in FOUR_WAYS
            for r in database.store(SHARDS[path].cls).search_all()
        )
    finally:
        try:
            database.drop()
        finally:
            database.close()


@pytest.mark.parametrize("url", ["memory://", "sqlite://", "file://"])
def test_a_failing_child_delete_leaves_the_item_whole(url: str, monkeypatch: Any) -> None:
    from persisty.errors import Unavailable
    from persisty.store import Remove

    database = persisty.connect(url_of(url))
    people = sharded(database.store(ROWS), FOUR_WAYS)
    whole = people.create(person())
    geo = database.store(SHARDS["location.geolocation"].cls)
    engine: Any = geo
    target: Any = geo if url == "sqlite://" else engine.table  # what applies one op
    name = "_check" if url == "file://" else "_apply"
    real = getattr(type(target), name)

    def failing(self: Any, *args: Any) -> Any:
        op = args[-1] if name == "_apply" else args[0]
        if self is target and isinstance(op, Remove):
            raise Unavailable("the engine failed on this write")
        return real(self, *args)

    monkeypatch.setattr(type(target), name, failing)
    with pytest.raises(Unavailable):
        people.delete("p1")
    monkeypatch.undo()
    assert people.read("p1") == whole  # every row still there, the parent too
    people.delete("p1")
    assert people.read("p1") is None and _rows_of(database) == 0


def test_a_child_delete_refused_by_the_engine_leaves_the_item_whole(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On every engine: the engine refuses one shard row's delete inside the commit that
    deletes the parent and the other rows; nothing of the item is gone."""
    people = sharded(db.store(ROWS), FOUR_WAYS)
    whole = people.create(person())
    counts = {path: len(_rows(db, path)) for path in FOUR_WAYS}
    stale_child_deletes(monkeypatch, type(people), "location.geolocation")
    for layer in (people, sharded(db.store(ROWS), FOUR_WAYS)):  # pointers seen, and not
        with pytest.raises(PreconditionFailed):
            layer.delete("p1")
        assert people.read("p1") == whole  # every row still there, the parent too
        assert {path: len(_rows(db, path)) for path in FOUR_WAYS} == counts
    monkeypatch.undo()
    people.delete("p1")
    assert people.read("p1") is None and _rows_of(db) == 0


def _rows_of(database: Database) -> int:
    return sum(len(list(database.store(SHARDS[p].cls).search_all())) for p in FOUR_WAYS)


def test_every_leaf_encrypted_before_it_is_split(db: Database) -> None:
    from persisty.layers import KeyRing, encrypted, sealed_model

    keys = KeyRing({"k1": KeyRing.new_key()}, current="k1")
    rows_cls = shard_model(sealed_model(Person, LEAVES), FOUR_WAYS)
    split = sharded(db.store(rows_cls), FOUR_WAYS)
    people = encrypted(split, LEAVES, keys)
    a = people.create(person("a"))
    b = people.create(person("b"))
    assert people.read("a") == a and people.read("b") == b
    moved = people.write_path("a", "location.city", "Tokyo")
    assert moved.location is not None and moved.location.city == "Tokyo"
    assert people.read("a") == moved
    stores = [db.store(rows_cls)] + [db.store(p.cls) for p in rows_cls.__persisty_shards__]
    text = repr([list(s.search_all()) for s in stores])
    assert not [w for w in PLAIN if w in text], text  # no plaintext in any row of any store
    birth_a = split.read_path("a", "birth_details")
    birth_b = split.read_path("b", "birth_details")
    for damage in (
        {"birth_details.dob": flipped(birth_b["dob"])},  # one flipped byte
        {"birth_details.hospital": birth_b["dob"]},  # dob's ciphertext moved
        {"birth_details": birth_a},
    ):  # A's birth row under B
        split.patch("b", damage)
        with pytest.raises(IntegrityError):
            people.read("b")
        split.patch("b", {"birth_details": birth_b})
        assert people.read("b") == b


def test_dynamodb_requests_are_those_of_hand_written_code() -> None:
    """A read is one BatchGetItem of the parent and its rows, a write_path one read and one
    TransactWriteItems, a delete of an item seen one TransactWriteItems; a new layer that
    has seen nothing reads the list rows it could not guess in a second request."""
    database = persisty.connect(
        DYNAMODB_URL or "dynamodb://", namespace="s" + uuid.uuid4().hex[:10]
    )
    calls: list[str] = []
    try:
        people = sharded(database.store(ROWS), FOUR_WAYS)
        people.create(person("warm"))  # the tables exist before counting
        database.client.raw().meta.events.register(  # type: ignore[attr-defined]
            "before-call.dynamodb", lambda model, **_: calls.append(model.name)
        )
        created = people.create(person())
        assert calls == ["TransactWriteItems"]
        calls.clear()
        assert people.read("p1") == created and calls == ["BatchGetItem"]
        calls.clear()
        people.write_path("p1", "location.city", "Tokyo")
        assert calls == ["BatchGetItem", "TransactWriteItems"]
        calls.clear()
        cold = sharded(database.store(ROWS), FOUR_WAYS)
        got = cold.read("p1")
        assert got is not None and got.location is not None and got.location.city == "Tokyo"
        assert calls == ["BatchGetItem", "BatchGetItem"]  # the list length was unknown
        calls.clear()
        assert cold.read_batch(["warm", "p1"]) == [people.read("warm"), got]
        calls.clear()
        people.delete("p1")
        assert calls == ["TransactWriteItems"]
        assert all(_rows_of_key(database, "p1", path) == [] for path in FOUR_WAYS)
        calls.clear()
        sharded(database.store(ROWS), FOUR_WAYS).delete("warm")  # pointers unknown: read
        assert calls == ["GetItem", "TransactWriteItems"]
    finally:
        try:
            database.drop()
        finally:
            database.close()


def _rows_of_key(database: Database, key: str, path: str) -> list[Any]:
    return [r for r in database.store(SHARDS[path].cls).search_all() if r.parent == key]


def test_pointers_seen_earlier_never_leave_orphans(db: Database) -> None:
    """A layer deletes by the pointers it saw only while the parent is unchanged: after
    another writer grew the list, the delete reads the parent and removes every row."""
    mine, theirs = sharded(db.store(ROWS), FOUR_WAYS), sharded(db.store(ROWS), FOUR_WAYS)
    mine.create(person())
    assert mine.read("p1") is not None
    three = [Location("A", "B"), Location("C", "D"), Location("E", "F")]
    assert theirs.patch("p1", {"locations": three}).locations == three
    assert mine.read_batch(["p1"])[0] == theirs.read("p1")  # the third row read too
    theirs.patch("p1", {"locations": [*three, Location("G", "H")], "birth_details": None})
    mine.delete("p1")
    assert all(_rows(db, path) == [] for path in FOUR_WAYS)
    assert mine.read("p1") is None


def test_dynamodb_read_batch_of_100_items_is_the_batch_get_floor() -> None:
    """100 items are 600 rows (100 parents, 100 of each single shard, 200 list rows):
    BatchGetItem takes 100 keys a request, so 6 requests, as hand-written code needs."""
    database = persisty.connect(
        DYNAMODB_URL or "dynamodb://", namespace="s" + uuid.uuid4().hex[:10]
    )
    calls: list[str] = []
    try:
        people = sharded(database.store(ROWS), FOUR_WAYS)
        keys = [f"q{i}" for i in range(100)]
        people.edit_batch([Edit.create(person(k)) for k in keys], atomic=False)
        database.client.raw().meta.events.register(  # type: ignore[attr-defined]
            "before-call.dynamodb", lambda model, **_: calls.append(model.name)
        )
        got = people.read_batch(keys)
        assert [p.id for p in got if p is not None] == keys
        assert calls == ["BatchGetItem"] * 6  # ceil(600 / 100)
    finally:
        try:
            database.drop()
        finally:
            database.close()
