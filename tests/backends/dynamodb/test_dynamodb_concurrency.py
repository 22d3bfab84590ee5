"""The concurrency bar on DynamoDB: 8 threads each doing 20 read-modify-write increments
of one counter with if_match and retry end at exactly 160, and they really contended (the
issue's 8 x 200 = 1,600 runs on SQL and Redis, see tests/conformance; under 8-way
contention each increment costs ~16 requests, and moto_server answers one at a time, so
8 x 200 took minutes of its time for no more proof)."""

from __future__ import annotations

import dataclasses
import uuid
from concurrent.futures import ThreadPoolExecutor

from tests.conformance.test_dynamodb import dynamodb_url

import persisty
from persisty import etag
from persisty.backends.dynamodb import DynamoDatabase
from persisty.errors import PreconditionFailed
from persisty.testing.models import Counter

WORKERS, INCREMENTS = 8, 20


def test_eight_workers_times_twenty_if_match_increments_make_160() -> None:
    db = persisty.connect(dynamodb_url(), namespace="c" + uuid.uuid4().hex[:12])
    assert isinstance(db, DynamoDatabase)
    try:
        counters = db.store(Counter)
        counters.create(Counter(id="c"))

        def worker() -> int:
            conflicts = 0
            for _ in range(INCREMENTS):
                while True:
                    c = counters.read("c")
                    assert c is not None
                    try:
                        counters.update(dataclasses.replace(c, value=c.value + 1), if_match=etag(c))
                        break
                    except PreconditionFailed:
                        conflicts += 1
            return conflicts

        with ThreadPoolExecutor(WORKERS) as pool:
            conflicts = sum(pool.map(lambda _: worker(), range(WORKERS)))
        final = counters.read("c")
        assert final is not None and final.value == WORKERS * INCREMENTS
        assert conflicts > 0  # the workers really did contend
    finally:
        db.drop()
        db.close()
