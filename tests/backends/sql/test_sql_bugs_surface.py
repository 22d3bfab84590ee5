"""A bug raised inside a SQL connection (a ``NameError``, ``AttributeError``, ``KeyError``
in persisty's code or the caller's) surfaces as itself, not as ``Unavailable`` ("the server
is down"), and the store goes on working; what a driver raises is still translated."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from tests.conftest import MYSQL_URL, POSTGRES_URL

import persisty
from persisty.backends.sql import SqlDatabase
from persisty.errors import Unavailable
from persisty.model import stored


@stored(name="bugged")
class Bugged:
    id: str
    n: int = 0


@pytest.fixture(params=["sqlite-file", "sqlite-memory", "postgresql", "mariadb"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> SqlDatabase:
    url = {
        "sqlite-file": f"sqlite:///{tmp_path / 'b.db'}",
        "sqlite-memory": "sqlite://",
        "postgresql": POSTGRES_URL,
        "mariadb": MYSQL_URL,
    }[request.param]
    database = persisty.connect(url)
    assert isinstance(database, SqlDatabase)
    return database


@pytest.mark.parametrize("bug", [NameError, AttributeError, KeyError, AssertionError])
def test_a_bug_inside_a_connection_is_raised_as_itself(
    db: SqlDatabase, bug: type[Exception]
) -> None:
    notes = db.store(Bugged)
    key = uuid.uuid4().hex
    notes.create(Bugged(id=key))
    executor = notes.executor  # type: ignore[attr-defined]
    for _ in range(3):  # more often than the pool has connections: none is left broken
        with pytest.raises(bug) as raised, executor.connection() as conn:
            executor.run(conn, "SELECT 1", ())
            raise bug("a mistake in the code")
        assert not isinstance(raised.value, Unavailable)
    assert notes.patch(key, {"n": 2}).n == 2
    db.close()


def test_a_driver_failure_is_still_translated(db: SqlDatabase) -> None:
    notes = db.store(Bugged)
    key = uuid.uuid4().hex
    notes.create(Bugged(id=key))
    executor = notes.executor  # type: ignore[attr-defined]
    with pytest.raises(persisty.errors.PersistyError) as raised, executor.connection() as conn:
        executor.run(conn, "SELECT * FROM no_such_table_here", ())
    assert not isinstance(raised.value, NameError | AttributeError | KeyError)
    assert notes.read(key) is not None
    db.close()
