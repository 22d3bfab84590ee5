"""The async twins of the sharding layer's tests on every engine (tests/layers/test_sharded.py
is the sync side): a Person sharded four ways round-trips, leaves one row per shard, never
leaves an orphan or a partial item when a write fails, keeps concurrent counters, seals
every leaf before it is split, and reports damage as ``IntegrityError``."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator
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

import persisty.aio
from persisty.errors import Conflict, IntegrityError, PreconditionFailed, ValidationError
from persisty.layers import KeyRing, encrypted, sealed_model, shard_model, sharded
from persisty.model import etag, meta_of
from persisty.store import AsyncDatabase, AsyncStore
from persisty.testing._concurrency import run_concurrently_async

ROWS = shard_model(Person, FOUR_WAYS)
SHARDS = {p.text: p for p in ROWS.__persisty_shards__}


@pytest.fixture(params=URLS, ids=ENGINE_IDS)
async def db(request: Any) -> AsyncIterator[AsyncDatabase]:
    database = persisty.aio.connect(url_of(request.param), namespace="s" + uuid.uuid4().hex[:10])
    try:
        yield database
    finally:
        try:
            await database.drop()
        finally:
            await database.close()


async def _all(store: AsyncStore[Any]) -> list[Any]:
    return [r async for r in store.search_all()]


async def _rows(db: AsyncDatabase, path: str) -> list[Any]:
    return await _all(db.store(SHARDS[path].cls))


async def _counts(db: AsyncDatabase) -> dict[str, int]:
    return {path: len(await _rows(db, path)) for path in FOUR_WAYS}


ONE_EACH = {"birth_details": 1, "location": 1, "location.geolocation": 1, "locations[]": 2}


async def test_three_write_paths_leave_one_row_per_shard(db: AsyncDatabase) -> None:
    people = sharded(db.store(ROWS), FOUR_WAYS)
    p = await people.create(person())
    assert await people.read("p1") == p
    assert await _counts(db) == ONE_EACH
    new = p
    for city in ("Tokyo", "Kyoto", "Sapporo"):
        before = etag(await people.read("p1"))
        new = await people.write_path("p1", "location.city", city)
        assert new.location is not None and new.location.city == city
        assert etag(new) != before
    assert await _counts(db) == ONE_EACH
    assert await people.read("p1") == new
    assert await people.read_path("p1", "location.geolocation.latitude") == 34.7
    with pytest.raises(PreconditionFailed):
        await people.write_path("p1", "name", "x", if_match=etag(p))
    await people.delete("p1")
    assert await people.read("p1") is None
    assert all(n == 0 for n in (await _counts(db)).values())


async def test_a_failed_parent_write_changes_no_child_row(db: AsyncDatabase) -> None:
    people = sharded(db.store(ROWS), FOUR_WAYS)
    first = await people.create(person())
    rows = {path: await _rows(db, path) for path in FOUR_WAYS}
    assert first.birth_details is not None
    other = dataclasses.replace(
        person(), birth_details=Birth("Elsewhere", first.birth_details.dob), locations=[]
    )
    with pytest.raises(Conflict):  # the parent insert fails after the item was validated
        await people.create(other)
    assert {path: await _rows(db, path) for path in FOUR_WAYS} == rows
    assert await people.read("p1") == first


async def test_a_failing_child_delete_leaves_the_item_whole(
    db: AsyncDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    people = sharded(db.store(ROWS), FOUR_WAYS)
    whole = await people.create(person())
    stale_child_deletes(monkeypatch, type(people), "location.geolocation")
    for layer in (people, sharded(db.store(ROWS), FOUR_WAYS)):  # pointers seen, and not
        with pytest.raises(PreconditionFailed):  # the engine refuses the geolocation delete
            await layer.delete("p1")
        assert await people.read("p1") == whole  # every row still there, the parent too
        assert await _counts(db) == ONE_EACH
    monkeypatch.undo()
    await people.delete("p1")
    assert await people.read("p1") is None
    assert all(n == 0 for n in (await _counts(db)).values())


async def test_damaged_rows_raise_integrity_error(db: AsyncDatabase) -> None:
    people = sharded(db.store(ROWS), FOUR_WAYS)
    a = await people.create(person("a"))
    assert a.birth_details is not None
    await people.create(
        dataclasses.replace(person("b"), birth_details=Birth("B", a.birth_details.dob))
    )
    births = db.store(SHARDS["birth_details"].cls)
    row_a = await births.read("a")
    assert row_a is not None
    await births.put(dataclasses.replace(row_a, parent="b"))  # A's birth row copied under B
    with pytest.raises(IntegrityError) as e:
        await people.read("b")
    assert e.value.field == "birth_details"
    assert await people.read("a") == a


async def test_a_row_naming_a_class_is_read_as_data(db: AsyncDatabase) -> None:
    people = sharded(db.store(ROWS), FOUR_WAYS)
    await people.create(person())
    births, rows = db.store(SHARDS["birth_details"].cls), db.store(ROWS)
    hostile = await births.put(
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
    parent = await rows.read("p1")
    assert parent is not None
    await rows.update(
        dataclasses.replace(
            parent, shard_tags={**parent.shard_tags, "birth_details": etag(hostile)}
        )
    )
    got = await people.read("p1")
    assert got is not None and got.birth_details == Birth("H", DOB)


async def test_separate_counters_of_one_item(db: AsyncDatabase) -> None:
    people = sharded(db.store(ROWS), FOUR_WAYS)
    await people.create(person())
    rounds = 25

    async def worker(n: int) -> None:
        for i in range(1, rounds + 1):
            await people.write_path("p1", f"counters.c{n}", i)

    def one(n: int) -> Any:
        return lambda: worker(n)

    await run_concurrently_async([one(n) for n in range(8)])
    final = await people.read("p1")
    assert final is not None and final.counters == {f"c{n}": rounds for n in range(8)}
    assert await _counts(db) == ONE_EACH


async def test_every_leaf_encrypted_before_it_is_split(db: AsyncDatabase) -> None:
    keys = KeyRing({"k1": KeyRing.new_key()}, current="k1")
    rows_cls = shard_model(sealed_model(Person, LEAVES), FOUR_WAYS)
    split = sharded(db.store(rows_cls), FOUR_WAYS)
    people = encrypted(split, LEAVES, keys)
    a = await people.create(person("a"))
    b = await people.create(person("b"))
    assert await people.read("a") == a and await people.read("b") == b
    moved = await people.write_path("a", "location.city", "Tokyo")
    assert moved.location is not None and moved.location.city == "Tokyo"
    assert await people.read("a") == moved
    stores = [db.store(rows_cls)] + [db.store(p.cls) for p in rows_cls.__persisty_shards__]
    text = repr([await _all(s) for s in stores])
    assert not [w for w in PLAIN if w in text], text  # no plaintext in any row of any store
    birth_a = await split.read_path("a", "birth_details")
    birth_b = await split.read_path("b", "birth_details")
    for damage in (
        {"birth_details.dob": flipped(birth_b["dob"])},  # one flipped byte
        {"birth_details.hospital": birth_b["dob"]},  # dob's ciphertext moved
        {"birth_details": birth_a},  # A's birth row under B
    ):
        await split.patch("b", damage)
        with pytest.raises(IntegrityError):
            await people.read("b")
        await split.patch("b", {"birth_details": birth_b})
        assert await people.read("b") == b


async def test_dynamodb_big_parts_fit_in_shards() -> None:
    url = DYNAMODB_URL or "dynamodb://"
    database = persisty.aio.connect(url, namespace="s" + uuid.uuid4().hex[:10])
    plain = persisty.aio.connect(url, namespace="s" + uuid.uuid4().hex[:10])
    try:
        big = dataclasses.replace(
            person(),
            birth_details=Birth("h" * 250_000, DOB),
            location=Location("c" * 250_000, "JP"),
        )
        people = sharded(database.store(ROWS), FOUR_WAYS)
        assert await people.create(big) == big
        assert await people.read("p1") == big
        with pytest.raises(ValidationError) as e:  # the same item in one row: too big
            await plain.store(Person).create(big)
        assert "bytes" in str(e.value) and "400 KB" in str(e.value)
        huge = dataclasses.replace(big, location=Location("c" * 450_000, "JP"), id="p2")
        with pytest.raises(ValidationError) as e:  # one part still too big: named, sized
            await people.create(huge)
        assert "person_location" in str(e.value) and "bytes" in str(e.value)
        assert await people.read("p2") is None
        for path in FOUR_WAYS:
            assert all(r.parent == "p1" for r in await _rows(database, path))
    finally:
        for d in (database, plain):
            try:
                await d.drop()
            finally:
                await d.close()
