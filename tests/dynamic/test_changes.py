"""On every backend, sync and async: ``int`` to ``float`` is an online alter (no fence, no
copy, the same data generation; a column type changed in place on PostgreSQL and MariaDB);
every error a user sees names the user's store and attributes (never a data generation such
as ``tasks__g1``); and attributes keep the order they were declared in (the generated
class, its JSON Schema, the stored definition)."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import DYNAMODB_URL, MYSQL_URL, POSTGRES_URL, REDIS_URL

import persisty
import persisty.aio
from persisty import F, etag
from persisty.dynamic import catalog, import_rows, rows_of
from persisty.errors import Conflict, PersistyError, ValidationError

_DIR = Path(tempfile.mkdtemp(prefix="persisty-dynchg-"))
URLS = {
    "memory": "memory://",
    "file": f"file://{_DIR / 'files'}",
    "sqlite": f"sqlite:///{_DIR / 'chg.db'}",
    "postgresql": POSTGRES_URL,
    "mariadb": MYSQL_URL,
    "redis": REDIS_URL,
    "dynamodb": DYNAMODB_URL,
}

# declared in an order that is neither alphabetical nor required-first
TASKS: dict[str, Any] = {
    "name": "tasks",
    "key": "zid",
    "attrs": {
        "zid": {"type": "str"},
        "title": {"type": "str", "max_length": 20},
        "done": {"type": "bool", "default": False},
        "estimate": {"type": "int", "optional": True},
        "where": {
            "type": "dict",
            "optional": True,
            "attrs": {"street": {"type": "str"}, "city": {"type": "str"}},
        },
        "assignee": {"type": "str"},
    },
    "indexes": ["estimate"],
}
ORDER = ["zid", "title", "done", "estimate", "where", "assignee"]
FLOAT = {**TASKS, "attrs": {**TASKS["attrs"], "estimate": {"type": "float", "optional": True}}}


@pytest.fixture(params=sorted(URLS))
def db(request: pytest.FixtureRequest) -> Iterator[Any]:
    database = persisty.connect(URLS[request.param], namespace="c" + uuid.uuid4().hex[:12])
    yield database
    database.drop()
    database.close()


def test_int_to_float_is_an_online_alter(db: Any) -> None:
    cat = catalog(db, staleness=0.05)
    d = cat.define(TASKS)
    tasks = cat.store("tasks")
    tasks.create({"zid": "a", "title": "one", "estimate": 3, "assignee": "ann"})
    plan = cat.plan("tasks", FLOAT)
    assert not plan.destructive and [s.kind for s in plan.steps] == ["widen"]
    d2 = cat.alter("tasks", FLOAT, if_match=etag(d))
    # no fenced copy: the same data generation, the same epoch (open stores keep writing)
    assert (d2.version, d2.generation, d2.epoch, d2.state) == (2, 1, d.epoch, "live")
    assert d2.retired == []
    tasks.create({"zid": "b", "title": "two", "estimate": 2.5, "assignee": "bob"})
    assert tasks.read("a").estimate == 3.0 and tasks.read("b").estimate == 2.5
    assert [t.zid for t in tasks.search(F.estimate > 2.9).items] == ["a"]
    assert [t.zid for t in tasks.search(order=["estimate"]).items] == ["b", "a"]
    tasks.patch("a", {"estimate": 0.25})
    assert tasks.read("a").estimate == 0.25
    assert [t.zid for t in cat.store("tasks").search(F.estimate < 1).items] == ["a"]


def _error(call: Any) -> PersistyError:
    with pytest.raises(PersistyError) as e:
        call()
    return e.value


def test_errors_name_the_users_store_and_attributes(db: Any) -> None:
    cat = catalog(db)
    cat.define(TASKS)
    tasks = cat.store("tasks")
    tasks.create({"zid": "a", "title": "one", "assignee": "ann"})
    errors = [
        _error(lambda: tasks.create({"zid": "b", "title": "x" * 21, "assignee": "a"})),
        _error(lambda: tasks.create({"zid": "b", "title": 5, "assignee": "a"})),
        _error(lambda: tasks.create({"zid": "b", "title": "t"})),
        _error(lambda: tasks.create({"zid": "b", "title": "t", "assignee": "a", "nope": 1})),
        _error(lambda: tasks.patch("a", {"estimate": "many"})),
        _error(lambda: tasks.create({"zid": "a", "title": "t", "assignee": "a"})),
        _error(lambda: tasks.search(F.nope == 1)),
    ]
    fields = [e.field for e in errors]
    assert fields[:5] == ["title", "title", "assignee", "nope", "estimate"]
    assert isinstance(errors[0], ValidationError) and isinstance(errors[5], Conflict)
    for e in errors:
        assert "__g" not in e.message and "__g" not in str(e), e.message
    assert errors[0].message.startswith("tasks.title")
    assert tasks.meta.name == "tasks"
    results = tasks.edit_batch(
        [persisty.Edit.create({"zid": "c", "title": "x" * 30, "assignee": "a"})], atomic=False
    )
    assert not results[0].ok and "__g" not in (results[0].message or "")
    report = import_rows(
        tasks, rows_of(["zid,title,assignee", "d,ok,ann", "e,,"], "csv"), cells=True
    )
    assert report.imported == 1 and [(e.line, e.field) for e in report.errors] == [(3, "title")]
    assert "__g" not in report.errors[0].message and "tasks" in report.errors[0].message


def test_attributes_keep_their_declared_order(db: Any) -> None:
    cat = catalog(db)
    cat.define(TASKS)
    d = cat.get("tasks")
    assert list(d.spec["attrs"]) == ORDER
    assert list(d.spec["attrs"]["where"]["attrs"]) == ["street", "city"]
    fresh = (
        catalog(persisty.connect(db.url, namespace=db.namespace)) if db.url != "memory://" else cat
    )
    for c in (cat, fresh):
        store = c.store("tasks")
        assert [a.name for a in store.meta.attrs] == ORDER
        assert list(store.meta.json_schema()["properties"]) == ORDER
        assert list(store.meta.json_schema("create")["properties"]) == ORDER
        assert list(c.get("tasks").spec["attrs"]) == ORDER
        assert [list(x.spec["attrs"]) for x in c.list()] == [ORDER]
    # an alter keeps the order and puts the new attribute last
    wider = {**TASKS, "attrs": {**TASKS["attrs"], "aaa": {"type": "str", "optional": True}}}
    cat.alter("tasks", wider)
    assert list(fresh.get("tasks").spec["attrs"]) == [*ORDER, "aaa"]
    assert [a.name for a in fresh.store("tasks").meta.attrs] == [*ORDER, "aaa"]


@pytest.mark.parametrize("name", sorted(URLS))
async def test_async_float_alter_names_and_order(name: str) -> None:
    async with persisty.aio.connect(URLS[name], namespace="c" + uuid.uuid4().hex[:12]) as db:
        try:
            cat = catalog(db, staleness=0.05)
            d = await cat.define(TASKS)
            tasks = await cat.store("tasks")
            await tasks.create({"zid": "a", "title": "one", "estimate": 3, "assignee": "ann"})
            d2 = await cat.alter("tasks", FLOAT, if_match=etag(d))
            assert (d2.generation, d2.epoch) == (d.generation, d.epoch)
            await tasks.create({"zid": "b", "title": "two", "estimate": 1.5, "assignee": "b"})
            assert [t.zid for t in (await tasks.search(F.estimate < 2)).items] == ["b"]
            with pytest.raises(ValidationError) as e:
                await tasks.create({"zid": "c", "title": "t"})
            assert e.value.field == "assignee" and "__g" not in e.value.message
            assert list((await cat.get("tasks")).spec["attrs"]) == ORDER
            assert list(tasks.meta.json_schema()["properties"]) == ORDER
        finally:
            await cat.close()
            await db.drop()


MIGRATE = """
import json, sys
import persisty, persisty.dynamic
db = persisty.connect(sys.argv[1], namespace=sys.argv[2])
cat = persisty.dynamic.catalog(db, staleness=0.2)
cat.migrate("tasks", json.loads(sys.argv[3]))
cat.close()
db.close()
"""


@pytest.mark.parametrize("name", ["sqlite", "postgresql", "mariadb", "redis"])
def test_a_write_opened_before_another_process_migrates_is_a_conflict(name: str) -> None:
    ns = "x" + uuid.uuid4().hex[:12]
    db = persisty.connect(URLS[name], namespace=ns)
    try:
        cat = catalog(db, staleness=0.2)
        cat.define(TASKS)
        mine = cat.store("tasks")  # validates against version 1
        mine.create({"zid": "a", "title": "one", "assignee": "ann"})
        retyped = {**TASKS, "attrs": {**TASKS["attrs"], "assignee": {"type": "int", "default": 0}}}
        retyped["attrs"].pop("where")
        done = subprocess.run(
            [sys.executable, "-c", MIGRATE, URLS[name], ns, json.dumps(retyped)],
            capture_output=True,
            timeout=60,
            check=False,
        )
        assert done.returncode != 0 and b"MigrationFailed" in done.stderr  # "ann" is no int
        retyped["attrs"]["assignee"] = {"type": "str", "max_length": 10}
        done = subprocess.run(
            [sys.executable, "-c", MIGRATE, URLS[name], ns, json.dumps(retyped)],
            capture_output=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr.decode()
        with pytest.raises(Conflict) as e:
            mine.create({"zid": "b", "title": "two", "assignee": "bob"})
        assert "older version" in e.value.message and "__g" not in e.value.message
        assert mine.read("a") is not None  # reads go on
        again = cat.store("tasks")
        again.create({"zid": "b", "title": "two", "assignee": "bob"})
        assert again.count() == 2 and "where" not in again.meta.by_name
    finally:
        cat.close()
        db.drop()
        db.close()
