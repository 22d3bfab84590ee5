"""The catalog on every backend (sync and async): define, use, alter online, migrate with a
fence, drop with a tombstone; invalid definitions create nothing."""

from __future__ import annotations

import tempfile
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import DYNAMODB_URL, MYSQL_URL, POSTGRES_URL, REDIS_URL
from tests.dynamic._specs import CONTACTS

import persisty
import persisty.aio
from persisty import F, etag
from persisty.dynamic import MigrationFailed, catalog
from persisty.errors import Conflict, NotFound, PreconditionFailed, Unavailable, ValidationError

_DIR = Path(tempfile.mkdtemp(prefix="persisty-dyncat-"))
URLS = {
    "memory": "memory://",
    "file": f"file://{_DIR / 'files'}",
    "sqlite": f"sqlite:///{_DIR / 'cat.db'}",
    "postgresql": POSTGRES_URL,
    "mariadb": MYSQL_URL,
    "redis": REDIS_URL,
    "dynamodb": DYNAMODB_URL,
}


def _ns() -> str:
    return "d" + uuid.uuid4().hex[:12]


def _with(spec: dict[str, Any], **attrs: Any) -> dict[str, Any]:
    return {**spec, "attrs": {**spec["attrs"], **attrs}}


@pytest.fixture(params=sorted(URLS))
def db(request: pytest.FixtureRequest) -> Any:
    database = persisty.connect(URLS[request.param], namespace=_ns())
    yield database
    database.drop()
    database.close()


def test_lifecycle(db: Any) -> None:
    cat = catalog(db, staleness=0.05)
    d = cat.define(CONTACTS)
    assert (d.version, d.generation, d.state) == (1, 1, "live")
    contacts = cat.store("contacts")
    ann = contacts.create({"email": "ann@example.com", "name": "Ann", "age": 41})
    contacts.create(type(ann)(email="bob@example.com", name="Bob"))
    assert [c.email for c in contacts.search(F.name == "Ann").items] == ["ann@example.com"]
    with pytest.raises(ValidationError) as bad:
        contacts.create({"email": "x@example.com", "age": -1})
    assert bad.value.field == "age"

    # additive: a new attribute with a default and an index on it, served with no fence
    wider = _with(CONTACTS, city={"type": "str", "default": "Paris"})
    wider["indexes"] = ["name", "city"]
    plan = cat.plan("contacts", wider)
    assert not plan.destructive and {s.kind for s in plan.steps} == {"add_attr", "add_index"}
    d2 = cat.alter("contacts", wider, if_match=etag(d))
    assert (d2.version, d2.generation, d2.state) == (2, 1, "live")
    contacts.create({"email": "cy@example.com", "city": "Oslo"})  # the same store object
    assert contacts.count(F.city == "Paris") == 2
    assert [c.email for c in contacts.search(F.city == "Oslo").items] == ["cy@example.com"]
    with pytest.raises(PreconditionFailed):
        cat.alter("contacts", wider, if_match=etag(d))  # planned on version 1

    # destructive: a copy through a transform; old data kept until gc()
    renamed = {
        "name": "contacts",
        "key": "email",
        "attrs": {
            "email": {"type": "str"},
            "full_name": {"type": "str", "optional": True},
            "city": {"type": "str", "default": "Paris"},
        },
    }
    assert cat.plan("contacts", renamed).destructive
    with pytest.raises(Conflict) as refused:
        cat.alter("contacts", renamed)
    assert refused.value.field is not None and refused.value.field.startswith("attrs.")
    report = cat.migrate(
        "contacts",
        renamed,
        transform=lambda r: {"email": r["email"], "full_name": r["name"], "city": r["city"]},
    )
    assert (report.copied, report.failed) == (3, 0)
    now = cat.get("contacts")
    assert (now.version, now.generation, now.state) == (3, 2, "live")
    with pytest.raises(Conflict):
        contacts.create({"email": "dee@example.com"})  # opened for version 1
    fresh = cat.store("contacts")
    assert sorted(c.full_name or "" for c in fresh.search().items) == ["", "Ann", "Bob"]
    assert cat.gc() == ["contacts__g1"]
    now = cat.get("contacts")  # gc() changed it

    # drop keeps a tombstone; a new definition never sees the old rows
    cat.drop("contacts", if_match=etag(now))
    with pytest.raises(NotFound):
        cat.store("contacts")
    with pytest.raises(NotFound):
        fresh.read("ann@example.com")
    again = cat.define(CONTACTS)
    assert again.generation == 3 and cat.store("contacts").count() == 0
    assert [x.name for x in cat.list()] == ["contacts"]


@pytest.mark.parametrize("name", ["memory", "sqlite", "postgresql", "redis"])
async def test_lifecycle_async(name: str) -> None:
    async with persisty.aio.connect(URLS[name], namespace=_ns()) as db:
        try:
            cat = catalog(db, staleness=0.05)
            d = await cat.define(CONTACTS)
            contacts = await cat.store("contacts")
            await contacts.create({"email": "ann@example.com", "age": 3})
            d = await cat.alter(
                "contacts",
                _with(CONTACTS, tags={"type": "list", "items": {"type": "str"}, "default": []}),
                if_match=etag(d),
            )
            assert (await contacts.read("ann@example.com")).tags == []  # type: ignore[union-attr]
            report = await cat.migrate(
                "contacts",
                {
                    "name": "contacts",
                    "key": "email",
                    "attrs": {"email": {"type": "str"}, "years": {"type": "int"}},
                },
                transform=lambda r: {"email": r["email"], "years": r["age"]},
            )
            assert report.copied == 1
            store = await cat.store("contacts")
            assert (await store.read("ann@example.com")).years == 3  # type: ignore[union-attr]
            with pytest.raises(Conflict):
                await contacts.patch("ann@example.com", {"age": 4})
            await cat.drop("contacts")
            assert await cat.list() == []
        finally:
            await db.drop()


INVALID = [
    ({"name": "x1", "attrs": {"id": {"type": "money"}}}, "attrs.id.type"),
    ({"name": "1x", "attrs": {"id": "str"}}, "name"),
    ({"name": "docs", "attrs": {"id": "str"}}, "name"),
    ({"name": "notes", "attrs": {"id": "str"}}, "name"),  # a static store's name
    ({"name": "x2", "key": "nope", "attrs": {"id": "str"}}, "key"),
    ({"name": "x3", "attrs": {"id": "str"}, "indexes": ["nope"]}, "indexes.0"),
    (
        {"name": "x4", "attrs": {"id": "str", "n": {"type": "int", "max_length": 3}}},
        "attrs.n.max_length",
    ),
    ({"name": "x5", "attrs": {"id": "str", "class": "str"}}, "attrs.class"),
    ({"name": "x6", "attrs": {"id": "str"}, "colour": "red"}, "colour"),
    ({"name": "x7", "attrs": {"id": {"type": "int", "default": "no"}}}, "attrs.id.default"),
    ({"name": "x" * 41, "attrs": {"id": "str"}}, "name"),
    ({"name": "x8", "attrs": {"id": "str", "e": {"type": "enum", "values": []}}}, "attrs.e.values"),
]


@pytest.mark.parametrize(("spec", "field"), INVALID)
def test_invalid_specs_create_nothing(spec: dict[str, Any], field: str) -> None:
    db = persisty.connect(URLS["sqlite"], namespace=_ns())
    try:
        cat = catalog(db, static=["notes"])
        with pytest.raises(ValidationError) as e:
            cat.define(spec)
        assert e.value.field == field
        assert cat.list() == [] and cat.definitions.count() == 0
        assert [n for n in db.footprint() if "dynamic_" not in n] == []  # no data store
    finally:
        db.drop()


def test_invalid_json_schema_creates_nothing() -> None:
    db = persisty.connect("memory://")
    cat = catalog(db)
    with pytest.raises(ValidationError) as e:
        cat.define_json_schema(
            "pets",
            {
                "type": "object",
                "properties": {"id": {"type": "string"}, "v": {"oneOf": [{"type": "string"}]}},
            },
            key="id",
        )
    assert e.value.field == "schema.properties.v.type"
    with pytest.raises(ValidationError) as e:
        cat.define_json_schema(
            "pets",
            {"type": "object", "properties": {"id": {"type": "string", "oneOf": []}}},
            key="id",
        )
    assert e.value.field == "schema.properties.id.oneOf"
    assert cat.list() == [] and cat.definitions.count() == 0


def test_define_twice_is_a_conflict() -> None:
    cat = catalog(persisty.connect("memory://"))
    cat.define(CONTACTS)
    with pytest.raises(Conflict):
        cat.define(CONTACTS)


def test_migrate_fences_writes_and_serves_reads() -> None:
    db = persisty.connect(URLS["sqlite"], namespace=_ns())
    try:
        cat = catalog(db, staleness=0.05, batch_size=50)
        cat.define(CONTACTS)
        contacts = cat.store("contacts")
        contacts.edit_batch(
            [persisty.Edit.create({"email": f"u{i}@x", "age": i}) for i in range(120)]
        )
        seen: dict[str, Any] = {}

        def transform(row: dict[str, Any]) -> dict[str, Any]:
            if row["email"] == "u60@x":  # in the middle of the copy
                seen["read"] = contacts.read("u1@x")
                seen["count"] = contacts.count()
                try:
                    contacts.create({"email": "late@x"})
                except Unavailable as e:
                    seen["write"] = e
            return {**row, "age": row["age"] + 1000}

        report = cat.migrate("contacts", _with(CONTACTS, age={"type": "int"}), transform=transform)
        assert report.copied == 120
        assert seen["read"].age == 1 and seen["count"] == 120
        assert isinstance(seen["write"], Unavailable)
        fresh = cat.store("contacts")
        assert fresh.read("u1@x").age == 1001 and fresh.read("late@x") is None  # type: ignore[union-attr]
    finally:
        db.drop()


def test_failed_transform_leaves_the_old_version_live() -> None:
    db = persisty.connect(URLS["sqlite"], namespace=_ns())
    try:
        cat = catalog(db, staleness=0.05, batch_size=100)
        before = cat.define(CONTACTS)
        contacts = cat.store("contacts")
        contacts.edit_batch(
            [persisty.Edit.create({"email": f"u{i:04}@x", "age": i}) for i in range(1000)]
        )

        def transform(row: dict[str, Any]) -> dict[str, Any]:
            if row["email"] == "u0499@x":  # the 500th row in key order
                raise RuntimeError("boom")
            return row

        with pytest.raises(MigrationFailed) as failed:
            cat.migrate("contacts", _with(CONTACTS, age={"type": "int"}), transform=transform)
        errors = failed.value.report.errors
        assert [(e.line, e.key) for e in errors] == [(500, "u0499@x")]
        assert "boom" in errors[0].message
        after = cat.get("contacts")
        assert (after.version, after.generation, after.state) == (1, 1, "live")
        assert etag(after) != etag(before) or after == before
        contacts.create({"email": "new@x"})  # writes work again
        assert contacts.count() == 1001
        assert db.footprint(cat.class_of(after)) != []
        assert not [n for n in db.footprint() if "__g2" in n]
    finally:
        db.drop()


def test_other_process_sees_changes_and_stale_writes_conflict() -> None:
    ns = _ns()
    one = persisty.connect(POSTGRES_URL, namespace=ns)
    two = persisty.connect(POSTGRES_URL, namespace=ns)
    try:
        a, b = catalog(one, staleness=0.2), catalog(two, staleness=0.2)
        a.define(CONTACTS)
        theirs = b.store("contacts")
        theirs.create({"email": "ann@x", "age": 1})
        a.alter("contacts", _with(CONTACTS, city={"type": "str", "optional": True}))
        import time

        deadline = time.monotonic() + 1.0
        while "city" not in theirs.meta.by_name and time.monotonic() < deadline:
            theirs.read("ann@x")
            time.sleep(0.05)
        assert "city" in theirs.meta.by_name
        a.migrate("contacts", _with(CONTACTS, age={"type": "int", "default": 0}))
        time.sleep(0.25)
        with pytest.raises(Conflict):
            theirs.create({"email": "bob@x"})
    finally:
        one.drop()
        one.close()
        two.close()


def test_concurrent_alters_with_one_etag_one_wins() -> None:
    ns = _ns()
    dbs = [persisty.connect(POSTGRES_URL, namespace=ns) for _ in range(2)]
    try:
        cats = [catalog(d) for d in dbs]
        tag = etag(cats[0].define(CONTACTS))
        results: list[Any] = []
        barrier = threading.Barrier(2)

        def alter(i: int) -> None:
            barrier.wait()
            try:
                results.append(
                    cats[i].alter(
                        "contacts",
                        _with(CONTACTS, **{f"extra{i}": {"type": "str", "optional": True}}),
                        if_match=tag,
                    )
                )
            except PreconditionFailed as e:
                results.append(e)

        threads = [threading.Thread(target=alter, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wins = [r for r in results if not isinstance(r, Exception)]
        assert len(wins) == 1 and len(results) == 2
        assert cats[0].get("contacts").version == 2
    finally:
        dbs[0].drop()
        for d in dbs:
            d.close()


def test_namespaces_define_the_same_name_differently() -> None:
    url = URLS["sqlite"]
    one = persisty.connect(url, namespace=_ns())
    two = persisty.connect(url, namespace=_ns())
    try:
        catalog(one).define(CONTACTS)
        catalog(two).define(
            {"name": "contacts", "key": "phone", "attrs": {"phone": {"type": "str"}}}
        )
        catalog(one).store("contacts").create({"email": "ann@x"})
        catalog(two).store("contacts").create({"phone": "555"})
        assert [c.email for c in catalog(one).store("contacts").search().items] == ["ann@x"]
        assert [c.phone for c in catalog(two).store("contacts").search().items] == ["555"]
    finally:
        one.drop()
        two.drop()


def test_encrypted_attributes_need_keys_and_are_sealed_at_rest() -> None:
    from persisty.layers import KeyRing

    spec = {
        "name": "secrets",
        "attrs": {"id": "str", "note": {"type": "str"}},
        "encrypted": ["note"],
    }
    db = persisty.connect("memory://")
    with pytest.raises(ValidationError) as e:
        catalog(db).define(spec)
    assert e.value.field == "encrypted"
    cat = catalog(db, keys=KeyRing({"k1": KeyRing.new_key()}, current="k1"))
    d = cat.define(spec)
    cat.store("secrets").create({"id": "a", "note": "the plan"})
    assert cat.store("secrets").read("a").note == "the plan"  # type: ignore[union-attr]
    raw = db.store(cat.class_of(d)).read("a")
    assert raw is not None and "the plan" not in raw.note


def test_redis_announces_changes_on_a_channel() -> None:
    import time

    ns = _ns()
    one = persisty.connect(REDIS_URL, namespace=ns)
    two = persisty.connect(REDIS_URL, namespace=ns)
    try:
        a, b = catalog(one, staleness=30), catalog(two, staleness=30)  # polling would wait
        a.define(CONTACTS)
        theirs = b.store("contacts")  # b subscribes
        theirs.create({"email": "ann@x"})
        a.alter("contacts", _with(CONTACTS, city={"type": "str", "optional": True}))
        start = time.monotonic()
        while "city" not in theirs.meta.by_name and time.monotonic() - start < 5:
            theirs.read("ann@x")
            time.sleep(0.02)
        assert "city" in theirs.meta.by_name and time.monotonic() - start < 1
        a.close()
        b.close()
    finally:
        one.drop()
        one.close()
        two.close()


async def test_redis_channel_async() -> None:
    import asyncio
    import time

    ns = _ns()
    one = persisty.aio.connect(REDIS_URL, namespace=ns)
    two = persisty.aio.connect(REDIS_URL, namespace=ns)
    try:
        a, b = catalog(one, staleness=30), catalog(two, staleness=30)
        await a.define(CONTACTS)
        theirs = await b.store("contacts")
        await a.drop("contacts")
        start = time.monotonic()
        while time.monotonic() - start < 5:
            try:
                await theirs.read("x")
            except NotFound:
                break
            await asyncio.sleep(0.02)
        assert time.monotonic() - start < 1
        await a.close()
        await b.close()
    finally:
        await one.drop()
        await one.close()
        await two.close()
