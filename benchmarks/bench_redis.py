"""persisty's Redis backend vs raw redis-py doing the same work on the same server.

The raw contender is what hand-written redis-py code would do: one JSON string per item
(msgspec), a sorted set per owner scored by ``score`` for the search and the count, and a
pipeline wherever several commands go out together (bulk create, update, delete).

    .venv/bin/python benchmarks/bench_redis.py --n 50000 --rounds 3 [--runs 3]

The machine is shared, so the two contenders take turns slice by slice inside every phase
(same data and operations as ``workload.run_one``); repeatable phases run ``--rounds`` times
and the best figure is kept. The table prints ops/s and the ratio to raw.

Uses the Redis at ``$PERSISTY_TEST_REDIS`` (default ``redis://127.0.0.1:6379/0``) under its
own key prefixes, and deletes them at the end.
"""

from __future__ import annotations

import argparse
import os
import sys
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgspec
import redis

sys.path.insert(0, str(Path(__file__).parent))

from workload import (
    BenchItem,
    Contender,
    PersistyContender,
    median_table,
    run_interleaved,
    table,
)

import persisty
from persisty.backends.redis import RedisDatabase

URL = os.environ.get("PERSISTY_TEST_REDIS", "redis://127.0.0.1:6379/0")


def _drop(client: redis.Redis, pattern: str) -> None:
    for name in client.scan_iter(match=pattern, count=1000):
        client.unlink(name)


class RawRedis(Contender):
    """Hand-written redis-py: JSON per key, ZSET per owner, pipelines."""

    name = "raw redis-py"
    baseline = True

    def setup(self) -> None:
        self.r = redis.Redis.from_url(URL)
        self.p = f"rawbench{uuid.uuid4().hex[:8]}"
        self.enc = msgspec.json.Encoder()
        self.dec = msgspec.json.Decoder()

    def teardown(self) -> None:
        _drop(self.r, self.p + ":*")
        self.r.close()

    def bulk_create(self, rows: Sequence[dict[str, Any]]) -> None:
        with self.r.pipeline(transaction=False) as pipe:
            for row in rows:
                pipe.set(f"{self.p}:i:{row['id']}", self.enc.encode(row))
                pipe.zadd(f"{self.p}:o:{row['owner']}", {row["id"]: row["score"]})
            pipe.execute()

    def read(self, key: str) -> Any:
        data = self.r.get(f"{self.p}:i:{key}")
        return None if data is None else self.dec.decode(data)

    def read_batch(self, keys: Sequence[str]) -> list[Any]:
        values = self.r.mget([f"{self.p}:i:{k}" for k in keys])
        return [None if v is None else self.dec.decode(v) for v in values]

    def update(self, row: dict[str, Any]) -> None:
        with self.r.pipeline(transaction=False) as pipe:
            pipe.set(f"{self.p}:i:{row['id']}", self.enc.encode(row))
            pipe.zadd(f"{self.p}:o:{row['owner']}", {row["id"]: row["score"]})
            pipe.execute()

    def patch(self, change: dict[str, Any]) -> None:
        # read-modify-write, as hand-written code on JSON strings does it
        name = f"{self.p}:i:{change['id']}"
        data = self.r.get(name)
        if data is None:
            raise KeyError(change["id"])
        row = self.dec.decode(data)
        row["score"], row["title"] = change["score"], change["title"]
        with self.r.pipeline(transaction=False) as pipe:
            pipe.set(name, self.enc.encode(row))
            pipe.zadd(f"{self.p}:o:{row['owner']}", {row["id"]: row["score"]})
            pipe.execute()

    def search(self, owner: str) -> list[Any]:
        ids = self.r.zrevrange(f"{self.p}:o:{owner}", 0, 19)
        if not ids:
            return []
        values = self.r.mget([f"{self.p}:i:{i.decode()}" for i in ids])
        return [self.dec.decode(v) for v in values if v is not None]

    def count(self, owner: str) -> int:
        return int(self.r.zcard(f"{self.p}:o:{owner}"))

    def delete(self, key: str) -> None:
        data = self.r.get(f"{self.p}:i:{key}")
        if data is None:
            return
        owner = self.dec.decode(data)["owner"]
        with self.r.pipeline(transaction=False) as pipe:
            pipe.delete(f"{self.p}:i:{key}")
            pipe.zrem(f"{self.p}:o:{owner}", key)
            pipe.execute()


def persisty_contender() -> PersistyContender:
    namespace = "bench" + uuid.uuid4().hex[:8]
    db = persisty.connect(URL, namespace=namespace)
    assert isinstance(db, RedisDatabase)

    def close() -> None:
        db.drop()
        db.close()

    return PersistyContender("persisty redis", lambda: db.store(BenchItem), close)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--runs",
        type=int,
        default=1,
        help="independent runs; with several, a median table with the spread",
    )
    args = parser.parse_args()
    every = []
    for i in range(args.runs):
        print(
            f"run {i + 1}/{args.runs}: raw redis-py vs persisty redis, n={args.n:,}, interleaved",
            flush=True,
        )
        results = run_interleaved(
            [RawRedis(), persisty_contender()], args.n, args.seed, args.rounds
        )
        print()
        print(table(results))
        print()
        every.append(results)
    if args.runs > 1:
        print(median_table(every))


if __name__ == "__main__":
    main()
