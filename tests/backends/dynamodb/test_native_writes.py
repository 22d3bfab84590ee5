"""put, patch and Increment on DynamoDB in one request each (counted on botocore's
before-call event against moto_server), and the etag a patch without a read leaves out:
computed from the content by readers, filled in by the conditional writes that meet it."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
from tests.backends.dynamodb.test_dynamodb import counted
from tests.conformance.test_dynamodb import dynamodb_url

import persisty
from persisty import F, Increment
from persisty.backends.dynamodb import DynamoDatabase
from persisty.errors import NotFound, PreconditionFailed
from persisty.model import Index, etag, stored
from persisty.store import Edit
from persisty.testing.models import Lease, Tally


@pytest.fixture
def db() -> Iterator[DynamoDatabase]:
    database = persisty.connect(dynamodb_url(), namespace="n" + uuid.uuid4().hex[:10])
    assert isinstance(database, DynamoDatabase)
    try:
        yield database
    finally:
        database.drop()
        database.close()


def test_patch_put_and_increment_are_one_request_each(db: DynamoDatabase) -> None:
    tallies = db.store(Tally)
    tallies.create(Tally(id="t"))
    leases = db.store(Lease)
    db.migrate()
    calls = counted(db)
    patched = tallies.patch("t", {"label": "x", "score": 2.5})
    assert dict(calls.tally) == {"UpdateItem": 1}
    calls.tally.clear()
    bumped = tallies.patch("t", {"hits": Increment(3)})
    assert dict(calls.tally) == {"UpdateItem": 1}
    assert (bumped.hits, bumped.label, bumped.score) == (3, "x", 2.5)
    calls.tally.clear()
    tallies.put(Tally(id="t", hits=7))  # over an existing item
    tallies.put(Tally(id="u", hits=1))  # a new one
    assert dict(calls.tally) == {"PutItem": 2}
    calls.tally.clear()
    lease = leases.put(Lease(id="l", owner="ann"))  # created stamped: a conditional create
    assert dict(calls.tally) == {"PutItem": 1}
    calls.tally.clear()
    assert leases.patch("l", {"note": "n"}).note == "n"  # expiry in the condition
    assert dict(calls.tally) == {"UpdateItem": 1}
    assert patched.label == "x" and lease.created_at is not None


def test_a_patched_item_has_its_content_hash_as_etag(db: DynamoDatabase) -> None:
    tallies = db.store(Tally)
    tallies.create(Tally(id="t"))
    patched = tallies.patch("t", {"label": "x", "hits": Increment(2)})
    assert tallies.read("t") == patched
    found = tallies.search(F.label == "x").items
    assert found == [patched]
    # the conditional writes that meet the etag left out fill it in, then write
    with pytest.raises(PreconditionFailed):
        tallies.update(dataclasses.replace(patched, hits=9), if_match="stale")
    again = tallies.patch("t", {"hits": Increment(1)})
    updated = tallies.update(dataclasses.replace(again, label="y"), if_match=etag(again))
    assert tallies.read("t") == updated
    third = tallies.patch("t", {"label": "z"})
    with pytest.raises(PreconditionFailed):
        tallies.patch("t", {"label": "w"}, if_match=etag(updated))
    assert tallies.patch("t", {"label": "w"}, if_match=etag(third)).label == "w"
    fourth = tallies.patch("t", {"score": 1.0})
    with pytest.raises(PreconditionFailed):
        tallies.delete("t", if_match=etag(third))
    tallies.delete("t", if_match=etag(fourth))
    assert tallies.read("t") is None
    with pytest.raises(NotFound):
        tallies.patch("t", {"hits": Increment(1)})


def test_put_keeps_created_and_an_expired_item_is_not_found(db: DynamoDatabase) -> None:
    leases = db.store(Lease)
    first = leases.put(Lease(id="l", owner="ann"))
    second = leases.put(Lease(id="l", owner="bob"))
    assert second.created_at == first.created_at and second.owner == "bob"
    assert leases.read("l") == second
    assert [x.id for x in leases.search(F.owner == "bob").items] == ["l"]
    moved = leases.patch("l", {"owner": "cy"})  # the index key moves with the value
    assert [x.id for x in leases.search(F.owner == "cy").items] == ["l"]
    assert leases.search(F.owner == "bob").items == []
    assert moved.expires_at is not None and moved.expires_at > second.expires_at  # type: ignore[operator]
    db.clock.advance(timedelta(hours=2))
    with pytest.raises(NotFound):
        leases.patch("l", {"note": "late"})
    again = leases.put(Lease(id="l", owner="dee"))  # over an expired item: created anew
    assert again.created_at != first.created_at and leases.read("l") == again


@stored(indexes=[Index("owner", "rank")])
class Ranked:
    id: str
    owner: str | None = None
    rank: int = 0


def test_a_patch_keeps_the_index_keys_in_step(db: DynamoDatabase) -> None:
    ranked = db.store(Ranked)
    ranked.edit_batch([Edit.create(Ranked(id=f"r{i}", owner="a", rank=i)) for i in range(3)])
    calls = counted(db)
    ranked.patch("r0", {"rank": 9})  # the GSI sort key alone: no read
    assert dict(calls.tally) == {"UpdateItem": 1}
    by_rank = ranked.search(F.owner == "a", order=[-F.rank]).items
    assert [r.id for r in by_rank] == ["r0", "r2", "r1"]
    calls.tally.clear()
    ranked.patch("r1", {"owner": "b"})  # a partition value needs the stored sort value
    assert calls.tally["UpdateItem"] == 0 and calls.tally["GetItem"] == 1
    assert [r.id for r in ranked.search(F.owner == "b", order=["rank"]).items] == ["r1"]
    ranked.patch("r2", {"owner": None})  # out of the sparse index, in one UpdateItem
    assert [r.id for r in ranked.search(F.owner == "a", order=["rank"]).items] == ["r0"]
    ranked.patch("r2", {"owner": "a", "rank": 1})
    assert [r.id for r in ranked.search(F.owner == "a", order=["rank"]).items] == ["r2", "r0"]


_CHILD = """
import sys, persisty
from persisty import Increment
from persisty.testing.models import Tally
db = persisty.connect(sys.argv[1], namespace=sys.argv[2])
tallies = db.store(Tally)
for _ in range(int(sys.argv[3])):
    tallies.patch("c", {"hits": Increment(1)})
print(tallies.retries)
db.close()
"""

# 8 x 60 (the 8 x 500 runs on SQLite, PostgreSQL, MariaDB and Redis): moto_server
# answers one request at a time, so 4,000 increments cost minutes of its time, not ours;
# 480 concurrent UpdateItems prove the same - an exact total and no retried race
PROCESSES, EACH = 8, 60


def test_eight_processes_times_60_increments_make_480_without_retries() -> None:
    ns = "i" + uuid.uuid4().hex[:10]
    db = persisty.connect(dynamodb_url(), namespace=ns)
    assert isinstance(db, DynamoDatabase)
    try:
        db.store(Tally).create(Tally(id="c"))
        args = [sys.executable, "-c", _CHILD, dynamodb_url(), ns, str(EACH)]
        procs = [
            subprocess.Popen(args, stdout=subprocess.PIPE, text=True) for _ in range(PROCESSES)
        ]
        retries = [int(p.communicate(timeout=600)[0].strip()) for p in procs]
        assert [p.returncode for p in procs] == [0] * PROCESSES
        final = db.store(Tally).read("c")
        assert final is not None and final.hits == PROCESSES * EACH
        assert retries == [0] * PROCESSES  # one UpdateItem each: never a lost race
    finally:
        db.drop()
        db.close()
