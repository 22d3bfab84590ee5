"""Issue 11: a write the engine rolls back for colliding with another (a deadlock) is a
``ConcurrentChange`` (a ``Conflict``, 409, safe to try again), never ``Unavailable``, and the
store tries it again itself. Real deadlocks on MariaDB and PostgreSQL: another connection
locks the rows of an atomic batch in the opposite order, after changing many rows of its
own, so the engine picks the batch as the victim."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import pytest
from tests.conftest import MYSQL_URL, POSTGRES_URL

import persisty
from persisty.backends.sql import SqlDatabase
from persisty.errors import ConcurrentChange, Conflict
from persisty.model import stored
from persisty.store import Edit


@stored(name="collide")
class Collide:
    id: str
    value: int = 0


@pytest.fixture(params=["postgresql", "mariadb"])
def db(request: pytest.FixtureRequest) -> Any:
    url = {"postgresql": POSTGRES_URL, "mariadb": MYSQL_URL}[request.param]
    database = persisty.connect(url, namespace="t" + uuid.uuid4().hex[:10])
    assert isinstance(database, SqlDatabase)
    yield database
    database.drop()
    database.close()


def _deadlock_with(db: SqlDatabase, write: Any) -> tuple[Any, BaseException | None]:
    """Run ``write`` (locking ``a`` then ``b``) while another connection, heavier (it has
    changed 200 rows), holds ``b`` and then asks for ``a``: a deadlock."""
    store = db.store(Collide)
    store.edit_batch([Edit.create(Collide(id=f"w{i}")) for i in range(200)])
    store.create(Collide(id="a"))
    store.create(Collide(id="b"))
    table = db.dialect.quote(store.schema.name)  # type: ignore[attr-defined]
    ph = db.dialect.ph
    driver = db.executor.driver
    other = driver.connect()
    out: dict[str, Any] = {}
    try:
        driver.run(other, "BEGIN")
        driver.run(
            other,
            f"UPDATE {table} SET value = value + 1 WHERE id <> {ph} AND id <> {ph}",
            ["a", "b"],
        )
        driver.run(other, f"UPDATE {table} SET value = value + 1 WHERE id = {ph}", ["b"])

        def run() -> None:
            try:
                out["result"] = write(store)
            except BaseException as e:
                out["error"] = e

        worker = threading.Thread(target=run)
        worker.start()
        time.sleep(0.5)  # the write holds a and waits for b
        driver.run(other, f"UPDATE {table} SET value = value + 1 WHERE id = {ph}", ["a"])
        driver.run(other, "COMMIT")
        worker.join(30)
    finally:
        other.close()
    return out.get("result"), out.get("error")


def _batch(store: Any) -> Any:
    return store.edit_batch([Edit.patch("a", {"value": 10}), Edit.patch("b", {"value": 20})])


def test_a_deadlocked_batch_is_tried_again_and_succeeds(db: SqlDatabase) -> None:
    result, error = _deadlock_with(db, _batch)
    assert error is None, repr(error)
    assert all(r.ok for r in result), result
    store = db.store(Collide)
    a, b = store.read("a"), store.read("b")
    assert a is not None and b is not None
    assert (a.value, b.value) == (10, 20)  # the batch, tried again after the other commit


def test_a_deadlock_is_a_concurrent_change_not_unavailable(db: SqlDatabase) -> None:
    """Two raw connections deadlock; the engine's error, translated, is a ConcurrentChange
    (a Conflict: 409), and the connection stays usable (it is not thrown away)."""
    store = db.store(Collide)
    store.create(Collide(id="a"))
    store.create(Collide(id="b"))
    table = db.dialect.quote(store.schema.name)  # type: ignore[attr-defined]
    ph = db.dialect.ph
    driver = db.executor.driver
    one, two = driver.connect(), driver.connect()
    errors: list[BaseException] = []
    update = f"UPDATE {table} SET value = value + 1 WHERE id = {ph}"

    def second() -> None:
        try:
            driver.run(two, update, ["a"])  # waits for one
            driver.run(two, "COMMIT")
        except BaseException as e:
            errors.append(e)
            driver.run(two, "ROLLBACK")

    try:
        driver.run(one, "BEGIN")
        driver.run(two, "BEGIN")
        driver.run(one, update, ["a"])
        driver.run(two, update, ["b"])
        worker = threading.Thread(target=second)
        worker.start()
        time.sleep(0.3)
        try:
            driver.run(one, update, ["b"])  # a deadlock: one of the two is rolled back
            driver.run(one, "COMMIT")
        except BaseException as e:
            errors.append(e)
            driver.run(one, "ROLLBACK")
        worker.join(30)
        assert len(errors) == 1, errors
        translated = db.dialect.translate(errors[0])
        assert isinstance(translated, ConcurrentChange), (errors[0], translated)
        assert isinstance(translated, Conflict) and translated.status == 409
        assert store.count() == 2  # the store's own connections are fine
    finally:
        one.close()
        two.close()
