"""The SQL backend beyond the conformance suite: URLs, the embedded default, pushdown and
EXPLAIN, migration plans, metadata for Alembic, shared page-key secrets, sequences and
errors, on SQLite, PostgreSQL and MariaDB (real engines on 127.0.0.1)."""

from __future__ import annotations

import dataclasses
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from tests.conftest import MYSQL_URL, POSTGRES_URL

import persisty
import persisty.aio
import persisty.sql
from persisty import F
from persisty.backends.sql import AsyncSqlDatabase, SqlDatabase, parse_url
from persisty.errors import Conflict, Unavailable, ValidationError
from persisty.model import Attr, Index, etag, etag_of, meta_of, stored
from persisty.query import ALL
from persisty.store import Edit
from persisty.testing._data import every_op_filters, sample_items
from persisty.testing.models import Item


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return {
        "sqlite": f"sqlite:///{tmp_path / 'test.db'}",
        "postgresql": POSTGRES_URL,
        "mariadb": MYSQL_URL,
    }[request.param]


@pytest.fixture
def db(url: str):  # type: ignore[no-untyped-def]
    database = persisty.connect(url, namespace="t" + uuid.uuid4().hex[:10])
    assert isinstance(database, SqlDatabase)
    yield database
    database.drop_tables()
    database.close()


# ---- URLs and the default ---------------------------------------------------------------------


def test_parse_url() -> None:
    assert parse_url("sqlite://").memory
    assert parse_url("sqlite:///:memory:").memory
    assert parse_url("sqlite:///rel/app.db").path == "rel/app.db"
    assert parse_url("sqlite:////abs/app.db").path == "/abs/app.db"
    pg = parse_url("postgresql://u:p@h:5433/db")
    assert pg.engine == "postgresql" and pg.conninfo == "postgresql://u:p@h:5433/db"
    assert parse_url("postgres://u@h/db").engine == "postgresql"
    my = parse_url("mariadb://u:s%40cret@h:3307/db")
    assert (my.engine, my.user, my.password, my.host, my.port, my.database) == (
        "mysql",
        "u",
        "s@cret",
        "h",
        3307,
        "db",
    )
    with pytest.raises(ValidationError):
        parse_url("sqlite://host/x.db")


def test_default_url_is_embedded_sqlite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PERSISTY_URL", raising=False)
    db = persisty.connect()
    assert isinstance(db, SqlDatabase)
    items = db.store(Item)
    items.create(Item(owner="ann", title="hello"))
    db.close()
    assert (tmp_path / "persisty.db").exists()
    again = persisty.connect()
    assert [i.title for i in again.store(Item).search().items] == ["hello"]
    again.close()


def test_unknown_option() -> None:
    with pytest.raises(ValidationError) as e:
        persisty.connect("sqlite://", pool_sise=3)
    assert e.value.field == "pool_sise"


def test_server_down_is_unavailable() -> None:
    db = persisty.connect("postgresql://postgres@127.0.0.1:1/test")
    with pytest.raises(Unavailable):
        db.store(Item).count()
    db.close()


def test_etag_from_doc_matches_model_etag() -> None:
    meta = meta_of(Item)
    for item in sample_items(20):
        assert etag_of(meta.encode(item)) == etag(item)


# ---- pushdown ------------------------------------------------------------------------------


def test_every_op_runs_in_sql(db: SqlDatabase) -> None:
    items = db.store(Item)
    for f in every_op_filters():
        plan = items.explain(f, [-F.priority])
        assert plan.residual is ALL, f
        assert "SELECT" in plan.detail and "ORDER BY" in plan.detail


def test_two_valued_not_and_like_escaping(db: SqlDatabase) -> None:
    items = db.store(Item)
    items.edit_batch(
        [
            Edit.create(Item(owner="a", title="50% off_x", score=None)),
            Edit.create(Item(owner="b", title="500 offx", score=1.0)),
            Edit.create(Item(owner="c", title="Hello", score=5.0)),
        ]
    )
    assert items.count(~(F.score < 3)) == 2  # None is not < 3, so ~ matches it
    assert items.count(F.title.contains("0% off_")) == 1
    assert items.count(F.title.contains("%")) == 1
    assert items.count(F.title.startswith("hello")) == 0  # case-sensitive
    assert items.count(F.title.istartswith("hello")) == 1
    hostile = "'; DROP TABLE item; --"
    assert items.count(F.owner == hostile) == 0
    assert items.count() == 3


def test_string_order_is_binary(db: SqlDatabase) -> None:
    items = db.store(Item)
    for title in ["b", "B", "a", "A", "ä", "a ", "a\t", "Z"]:
        items.create(Item(owner="o", title=title))
    got = [i.title for i in items.search(order=[+F.title]).items]
    assert got == sorted(got) == ["A", "B", "Z", "a", "a\t", "a ", "b", "ä"]
    assert items.count(F.title == "a") == 1  # no trailing-space padding
    assert items.count(F.title == "a ") == 1
    assert items.count(F.title == "ä") == 1


# ---- writes -----------------------------------------------------------------------------------


def test_errors_name_the_field(db: SqlDatabase) -> None:
    items = db.store(Item)
    items.create(Item(owner="ann", title="t", code="c1"))
    with pytest.raises(Conflict) as e:
        items.create(Item(owner="bob", title="t", code="c1"))
    assert e.value.field == "code"
    assert items.count() == 1


@stored(name="numbered_seq")
class Ticket:
    """A generated sequence."""

    id: str
    number: int | None = Attr(generated="sequence", default=None)


def test_sequences(db: SqlDatabase) -> None:
    tickets = db.store(Ticket)
    numbers = [tickets.create(Ticket(id=f"t{i}")).number for i in range(3)]
    assert numbers == [1, 2, 3]


def test_update_all_is_one_transaction(db: SqlDatabase) -> None:
    items = db.store(Item)
    items.edit_batch([Edit.create(i) for i in sample_items(30)])
    before = {items.key_of(i): i for i in items.search(limit=100).items}
    with pytest.raises(ValidationError):
        items.update_all(None, {"title": "x" * 101})
    after = {items.key_of(i): i for i in items.search(limit=100).items}
    assert after == before


# ---- secrets -----------------------------------------------------------------------------------


def test_page_key_secret_is_shared(url: str) -> None:
    ns = "t" + uuid.uuid4().hex[:10]
    one = persisty.connect(url, namespace=ns)
    two = persisty.connect(url, namespace=ns)
    try:
        a = one.store(Item)
        a.edit_batch([Edit.create(i) for i in sample_items(10)])
        page = a.search(order=[+F.title], limit=3)
        assert page.next_page_key is not None
        b = two.store(Item)
        rest = b.search(order=[+F.title], limit=3, page_key=page.next_page_key)
        assert len(rest.items) == 3
    finally:
        assert isinstance(one, SqlDatabase)
        one.drop_tables()
        one.close()
        two.close()


# ---- migrations and metadata ------------------------------------------------------------------


@stored(name="evolving")
class V1:
    id: str
    title: str = ""
    size: int = 0
    legacy: str | None = None


@stored(name="evolving", indexes=[Index("priority"), Index("title", "priority")])
class V2:
    id: str
    title: str = ""
    size: float = 0.0  # int -> float: widened in place (SQLite columns take either)
    priority: int = 3  # new, with a default
    note: str | None = None  # new, optional


def test_migration_plan(url: str) -> None:
    ns = "t" + uuid.uuid4().hex[:10]
    old = persisty.connect(url, namespace=ns)
    assert isinstance(old, SqlDatabase)
    try:
        v1 = old.store(V1)
        v1.create(V1(id="a", title="A", size=1))
        new = persisty.connect(url, namespace=ns)
        assert isinstance(new, SqlDatabase)
        v2 = new.store(V2)
        with pytest.raises(Unavailable) as e:  # the table lacks columns: say what to do
            v2.read("a")
        assert "migrate" in e.value.message
        plan = new.plan_migration()
        text = "\n".join(plan)
        assert "ADD COLUMN" in text and "priority" in text and "note" in text
        assert "CREATE INDEX" in text
        widened = [p for p in plan if "size" in p]
        assert not any(p.startswith("-- not applied") for p in widened)
        assert bool(widened) == (not url.startswith("sqlite")), plan
        assert any(p.startswith("-- not applied") and "legacy" in p for p in plan)
        assert new.migrate() == plan
        got = v2.read("a")
        assert got is not None and (got.title, got.priority, got.note) == ("A", 3, None)
        assert v2.count(F.priority == 3) == 1  # the new column was filled with the default
        v2.create(V2(id="b", title="B", size=2.5, priority=1))
        assert v2.count(F.size > 2) == 1 and v2.count(F.size < 2) == 1  # compared as a float
        assert [x.id for x in v2.search(order=[+F.priority]).items] == ["b", "a"]
        again = new.plan_migration()
        assert all(p.startswith("-- not applied") for p in again)  # nothing more to add
        new.close()
    finally:
        old.drop_tables()
        old.close()


def test_plan_for_new_tables_and_metadata(db: SqlDatabase) -> None:
    db.store(Item)
    plan = db.plan_migration()
    assert any(p.startswith("CREATE TABLE") for p in plan)
    md = persisty.sql.metadata(db, V1)
    table = md.tables[f"{db.namespace}_item"]
    assert {"id", "owner", "tags", "_etag", "_doc"} <= set(table.c.keys())
    assert {ix.name for ix in table.indexes} >= {f"ix_{db.namespace}_item_code"}
    assert any(ix.unique for ix in table.indexes)
    assert f"{db.namespace}_evolving" in md.tables
    assert isinstance(table.c.priority.type, sa.BigInteger)
    db.migrate()
    assert db.plan_migration() == []
    with pytest.raises(ValidationError):
        persisty.sql.metadata(persisty.connect("memory://"))


async def test_async_database(url: str) -> None:
    db = persisty.aio.connect(url, namespace="t" + uuid.uuid4().hex[:10])
    assert isinstance(db, AsyncSqlDatabase)
    try:
        items = db.store(Item)
        n = await items.create(Item(owner="ann", title="x"))
        assert await items.read(str(n.id)) == n
        assert "ADD COLUMN" not in "\n".join(await db.plan_migration())
        moved = dataclasses.replace(n, title="y")
        assert (await items.update(moved)).title == "y"
    finally:
        await db.drop_tables()
        await db.close()


def test_mariadb_indexed_string_limit() -> None:
    db = persisty.connect(MYSQL_URL, namespace="t" + uuid.uuid4().hex[:10])
    assert isinstance(db, SqlDatabase)
    try:
        items = db.store(Item)
        with pytest.raises(ValidationError) as e:
            items.create(Item(owner="x" * 256, title="t"))  # owner is indexed: VARCHAR(255)
        assert e.value.field == "owner"
        items.create(Item(owner="x" * 255, title="t", body="y" * 100_000))
        assert items.count() == 1
    finally:
        db.drop_tables()
        db.close()


@stored(name="tagged")
class Tagged:
    """Nothing of the stored item is kept on update: one conditional statement."""

    id: str
    value: int = 0
    tags: list[str] = Attr(default_factory=list)


def test_single_statement_conditional_writes(db: SqlDatabase) -> None:
    from persisty.errors import NotFound, PreconditionFailed

    store = db.store(Tagged)
    t = store.create(Tagged(id="a", value=1, tags=["x"]))
    with pytest.raises(NotFound):
        store.update(Tagged(id="ghost"), if_match="x")
    with pytest.raises(NotFound):
        store.delete("ghost", precondition=F.value == 1)
    with pytest.raises(PreconditionFailed):
        store.update(dataclasses.replace(t, value=2), if_match="stale")
    with pytest.raises(PreconditionFailed):
        store.update(dataclasses.replace(t, value=2), precondition=F.tags.contains("y"))
    u = store.update(
        dataclasses.replace(t, value=2),
        if_match=etag(t),
        precondition=F.tags.contains("x") & (F.value < 2),
    )
    assert store.read("a") == u
    with pytest.raises(PreconditionFailed):
        store.delete("a", if_match=etag(t))
    with pytest.raises(PreconditionFailed):
        store.delete("a", precondition=~F.tags.contains("x"))
    store.delete("a", if_match=etag(u), precondition=F.tags.contains("x"))
    assert store.read("a") is None


def test_sqlite_page_size_applies_to_a_new_file(tmp_path: Path) -> None:
    db = persisty.connect(f"sqlite:///{tmp_path / 'big.db'}", page_size=8192)
    assert isinstance(db, SqlDatabase)
    db.store(Item).create(Item(owner="a", title="t"))
    with db.executor.connection() as conn:
        assert db.executor.driver.fetch(conn, "PRAGMA page_size", ()) == [(8192,)]
    db.close()
    again = persisty.connect(f"sqlite:///{tmp_path / 'big.db'}", page_size=4096)
    assert isinstance(again, SqlDatabase)
    assert again.store(Item).count() == 1  # an existing file keeps its page size
    with again.executor.connection() as conn:
        assert again.executor.driver.fetch(conn, "PRAGMA page_size", ()) == [(8192,)]
    again.close()


@pytest.mark.parametrize("bad", ["big", 1000, 0, 131072, 8192.0])
def test_sqlite_page_size_must_be_a_page_size(bad: object) -> None:
    with pytest.raises(ValidationError) as e:
        persisty.connect("sqlite:///unused.db", page_size=bad)
    assert e.value.field == "page_size"
