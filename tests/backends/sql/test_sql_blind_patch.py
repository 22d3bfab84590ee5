"""A patch without ``if_match``/precondition/``Increment`` reads nothing first, on every SQL
engine: one ``UPDATE … RETURNING`` on SQLite and PostgreSQL, one ``UPDATE`` (the new document
into a session variable) and one ``SELECT`` of that variable on MariaDB. Counted by the
engines themselves: SQLite's trace callback, libpq's protocol trace, MariaDB's session status
counters. The document keeps the text of every value the patch did not set, and the etag of
the item it returns is the one every reader and conditional write sees."""

from __future__ import annotations

import functools
import re
import tempfile
import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
from tests.conftest import MYSQL_URL, POSTGRES_URL

import persisty
from persisty.backends.sql import SqlDatabase
from persisty.errors import Conflict, NotFound, PreconditionFailed, ValidationError
from persisty.model import Attr, Index, etag, stored


@stored(indexes=[Index("code", unique=True)])
class Card:
    id: str
    title: str = Attr(max_length=20, default="")
    score: float = 0.0
    code: str | None = None
    amount: Decimal = Decimal("0")
    extra: dict[str, Any] = Attr(default_factory=dict)


def _status(conn: Any, name: str) -> int:
    with conn.cursor() as cur:
        cur.execute("SHOW SESSION STATUS LIKE %s", (name,))
        return int(cur.fetchall()[0][1])


class Counted:
    """Statements (``sqlite``; ``postgresql``: ``Execute`` and ``Query`` messages of the wire
    protocol) or statements and index lookups (``mariadb``) on the database's one
    pooled connection between :meth:`reset` and :meth:`taken`."""

    def __init__(self, engine: str, db: SqlDatabase) -> None:
        self.engine = engine
        self.pool = db.executor.pool
        self.conn = self.pool.acquire()
        self.pool.give_back(self.conn)
        self.seen: list[str] = []
        self._trace = tempfile.TemporaryFile("w+")  # noqa: SIM115 - closed in close()
        self._base = (0, 0)
        if engine == "sqlite":
            self.conn.set_trace_callback(self.seen.append)
        elif engine == "postgresql":
            self.conn.pgconn.trace(self._trace.fileno())
            self.conn.pgconn.set_trace_flags(psycopg.pq.Trace.SUPPRESS_TIMESTAMPS)

    def reset(self) -> None:
        self.seen.clear()
        self._trace.seek(0)
        self._trace.truncate()
        if self.engine == "mariadb":
            self._base = (_status(self.conn, "Questions"), _status(self.conn, "Handler_read_key"))

    def taken(self) -> tuple[int, list[str]]:
        """How many statements ran, and what they were."""
        if self.engine == "sqlite":
            return len(self.seen), list(self.seen)
        if self.engine == "postgresql":
            self._trace.flush()
            self._trace.seek(0)
            lines = [ln.split("\t") for ln in self._trace.read().splitlines()]
            sent = [p for p in lines if len(p) > 2 and p[0] == "F"]
            # statements run (psycopg prepares a statement used often once, in a round trip
            # of its own that runs nothing)
            trips = sum(p[2] in ("Execute", "Query") for p in sent)
            return trips, [p[3] for p in sent if p[2] in ("Parse", "Query") and len(p) > 3]
        # MariaDB: the two SHOW STATUS of the measure count as two questions, and look
        # nothing up by key
        questions = _status(self.conn, "Questions") - self._base[0] - 2
        lookups = _status(self.conn, "Handler_read_key") - self._base[1]
        return questions, [f"read_key={lookups}"]

    def close(self) -> None:
        if self.engine == "sqlite":
            self.conn.set_trace_callback(None)
        elif self.engine == "postgresql":
            self.conn.pgconn.untrace()
        self._trace.close()


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def engine(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def db(engine: str, tmp_path: Path) -> Iterator[SqlDatabase]:
    url = {
        "sqlite": f"sqlite:///{tmp_path / 'blind.db'}",
        "postgresql": POSTGRES_URL,
        "mariadb": MYSQL_URL,
    }[engine]
    database = persisty.connect(url, namespace="b" + uuid.uuid4().hex[:10], pool_size=1)
    assert isinstance(database, SqlDatabase)
    yield database
    database.drop_tables()
    database.close()


@pytest.fixture
def counted(engine: str, db: SqlDatabase) -> Iterator[Counted]:
    db.store(Card).count()  # the table exists before anything is counted
    c = Counted(engine, db)
    yield c
    c.close()


def _verb(statement: str) -> str:
    """The first SQL word of a statement (as traced: libpq puts the statement's name and
    quotes before it)."""
    found = re.search(r"\b(UPDATE|SELECT|INSERT|DELETE|BEGIN|COMMIT)\b", statement.upper())
    return found.group(1) if found else ""


def _measure(counted: Counted, call: Callable[[], Any]) -> tuple[Any, int, list[str]]:
    counted.reset()
    out = call()
    n, what = counted.taken()
    return out, n, what


def test_a_patch_is_one_statement_without_a_read(
    engine: str, db: SqlDatabase, counted: Counted
) -> None:
    cards = db.store(Card)
    cards.create(Card(id="a", title="one", extra={"z": 1, "a": [1.5, {"y": None}]}))
    before = cards.read("a")
    # more than psycopg's prepare threshold: prepared statements count the same
    for i in range(8):
        changes = {"score": float(i), "title": "t"}
        new, n, what = _measure(counted, functools.partial(cards.patch, "a", changes))
        assert new.score == i and new.title == "t"
        if engine == "mariadb":
            # the UPDATE and the SELECT of its session variable; one key lookup (the UPDATE's)
            assert (n, what) == (2, ["read_key=1"])
        else:
            assert n == 1, what
            assert all(_verb(w) == "UPDATE" for w in what), what
    stored_ = cards.read("a")
    assert stored_ == new
    assert stored_ is not None and before is not None
    assert stored_.extra == {"z": 1, "a": [1.5, {"y": None}]}
    assert list(stored_.extra) == list(before.extra)  # the order of a dict's keys is kept


def test_a_missing_key_is_not_found_in_one_statement(db: SqlDatabase, counted: Counted) -> None:
    cards = db.store(Card)
    counted.reset()
    with pytest.raises(NotFound):
        cards.patch("nope", {"score": 1.0})
    n, what = counted.taken()
    assert n == 1, what  # (MariaDB: no row changed, no variable to read)


def test_the_returned_etag_is_the_stored_etag(db: SqlDatabase) -> None:
    cards = db.store(Card)
    cards.create(Card(id="a", title="one", amount=Decimal("1.000000000000000000001")))
    new = cards.patch("a", {"score": 2.5})
    assert new.amount == Decimal("1.000000000000000000001")  # untouched text, exact
    (got,) = cards.read_batch(["a"])
    assert got == new and etag(got) == etag(new)
    page = cards.search()
    assert page.items == [new]
    # a conditional write with the returned etag passes, a stale one fails
    again = cards.update(Card(id="a", title="two"), if_match=etag(new))
    with pytest.raises(PreconditionFailed):
        cards.delete("a", if_match=etag(new))
    assert cards.patch("a", {"title": "three"}, if_match=etag(again)).title == "three"


def test_a_failing_value_names_its_field(db: SqlDatabase) -> None:
    cards = db.store(Card)
    cards.create(Card(id="a", code="x"))
    cards.create(Card(id="b"))
    with pytest.raises(ValidationError) as bad:
        cards.patch("b", {"title": "x" * 21})
    assert bad.value.field == "title"
    with pytest.raises(Conflict) as taken:
        cards.patch("b", {"code": "x"})
    assert taken.value.field == "code"
    assert cards.read("b") == Card(id="b")


@stored
class Plain:
    id: str
    n: int = 0
    x: float = 0.0
    s: str = ""


def test_the_hot_path_checks_each_value_exactly(db: SqlDatabase) -> None:
    plain = db.store(Plain)
    plain.create(Plain(id="a"))
    for _ in range(3):  # the first patch of a shape plans it, the others take it
        assert plain.patch("a", {"n": 2, "x": 1.5, "s": "é"}) == Plain(id="a", n=2, x=1.5, s="é")
    bad: list[dict[str, Any]] = [
        {"n": True, "x": 1.5, "s": "t"},  # a bool is no int
        {"n": 2**63, "x": 1.5, "s": "t"},  # beyond 64 bits
        {"n": 1, "x": float("nan"), "s": "t"},
        {"n": 1, "x": 1.5, "s": 3},
    ]
    for changes in bad:
        with pytest.raises(ValidationError):
            plain.patch("a", changes)
    assert plain.read("a") == Plain(id="a", n=2, x=1.5, s="é")
    assert plain.patch("a", {"n": 1, "x": 2, "s": "u"}).x == 2.0  # an int for a float passes
    with pytest.raises(NotFound):
        plain.patch("b", {"n": 2, "x": 1.5, "s": "t"})


@pytest.mark.parametrize(
    "text",
    [
        'quote " and \\ backslash',
        "tab\tnew\nline",
        "soh \x01 del \x7f",
        "é ü 漢字 🎉",
        "line \u2028 sep",
        "",
    ],
)
def test_str_and_int_values_keep_their_exact_value(db: SqlDatabase, text: str) -> None:
    # (on SQLite a patch of str/int attributes binds each value once, the engine writing
    # its JSON; any text reads back as it was written, through every path)
    plain = db.store(Plain)
    plain.create(Plain(id="a", x=0.5))
    for n in (-(2**63), 2**63 - 1, 7):
        new = plain.patch("a", {"s": text, "n": n})
        assert new == Plain(id="a", n=n, x=0.5, s=text)
        assert plain.read("a") == new
        assert plain.read_batch(["a"]) == [new]
        assert plain.search().items == [new]
    assert plain.patch("a", {"s": "t"}, if_match=etag(new)).s == "t"


def test_a_lone_surrogate_is_refused(db: SqlDatabase) -> None:
    plain = db.store(Plain)
    plain.create(Plain(id="a"))
    plain.patch("a", {"s": "ok", "n": 1})  # the shape planned
    with pytest.raises(ValidationError):
        plain.patch("a", {"s": "\ud800", "n": 2})
    assert plain.read("a") == Plain(id="a", n=1, s="ok")


def test_a_patch_of_str_and_int_is_one_statement(
    engine: str, db: SqlDatabase, counted: Counted
) -> None:
    plain = db.store(Plain)
    plain.create(Plain(id="a"))
    for i in range(3):
        new, n, what = _measure(counted, functools.partial(plain.patch, "a", {"s": "v", "n": i}))
        assert new == Plain(id="a", n=i, s="v")
        assert n == (2 if engine == "mariadb" else 1), what
