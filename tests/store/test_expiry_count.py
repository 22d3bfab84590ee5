"""``count()`` of a store whose items expire: expired items are never counted, whether the
count is a table count less an index range of expired items (an index leads with the
expiry attribute), a count that tests each item's expiry, or (Redis, on the system clock) a
sorted-set count after the server removed what is due."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from typing import Any

import pytest
from tests.conftest import MYSQL_URL, POSTGRES_URL, REDIS_URL

import persisty
from persisty.model import Attr, Index, stored
from persisty.query import F
from persisty.store import Clock

URLS = ["memory://", "sqlite:///{tmp}/count.db", POSTGRES_URL, MYSQL_URL, REDIS_URL]


def _model(indexed: bool) -> type[Any]:
    @stored(
        key="k",
        name="expcount_" + uuid.uuid4().hex[:10],
        indexes=[Index("until")] if indexed else (),
    )
    class Lease:
        k: str
        group: str = "a"
        until: dt.datetime | None = Attr(expires=True, default=None)

    return Lease


@pytest.mark.parametrize("indexed", [True, False], ids=["indexed", "plain"])
@pytest.mark.parametrize("url", URLS, ids=["memory", "sqlite", "postgresql", "mysql", "redis"])
def test_expired_items_are_not_counted(url: str, indexed: bool, tmp_path: Any) -> None:
    db = persisty.connect(url.format(tmp=tmp_path))
    try:
        model = _model(indexed)
        store = db.store(model)
        store.put(model(k="forever"))  # the table exists from here on
        # far enough ahead for the writes and the first count on a loaded machine
        soon = dt.datetime.now(dt.UTC) + dt.timedelta(milliseconds=1500)
        store.put(model(k="later", until=soon + dt.timedelta(hours=1)))
        for i in range(3):
            store.put(model(k=f"brief{i}", group="b", until=soon))
        assert store.count() == 5
        time.sleep((soon - dt.datetime.now(dt.UTC)).total_seconds() + 0.2)
        assert store.count() == 2
        assert store.count(F.group == "b") == 0
        assert store.count(F.group == "a") == 2
        store.delete_all(None)
        assert store.count() == 0
    finally:
        db.close()


@pytest.mark.parametrize("url", URLS[:4], ids=["memory", "sqlite", "postgresql", "mysql"])
def test_count_follows_the_database_clock(url: str, tmp_path: Any) -> None:
    start = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    db = persisty.connect(url.format(tmp=tmp_path), clock=Clock(start))
    try:
        model = _model(True)
        store = db.store(model)
        store.put(model(k="a", until=start + dt.timedelta(hours=1)))
        store.put(model(k="b", until=start + dt.timedelta(hours=2)))
        store.put(model(k="c"))
        assert store.count() == 3
        db.clock.advance(dt.timedelta(minutes=90))
        assert store.count() == 2
        db.clock.advance(dt.timedelta(hours=1))
        assert store.count() == 1
        store.delete_all(None)
    finally:
        db.close()
