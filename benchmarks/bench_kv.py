"""persisty.kv against rstore (PyPI rlib-store 0.1, in the ``bench`` extra that ``.[dev]``
installs) and the raw driver doing the same, in one run, on SQLite, PostgreSQL and Redis.
Prints the median ops/s of ``--runs`` runs and each ratio's median with its spread.

    taskset -c 1 .venv/bin/python benchmarks/bench_kv.py --runs 3

Phases: set and get (n keys, one at a time), has and len (at n keys), extend (one call of
``points`` points), range (1,000 points), apply (1,000 events), current (after ``events``
events; rstore's sequence is filled in bulk past the 1,000 timed applies, since each of its
applies reads the whole sequence). rstore's Redis time series and events use a redis-py 2
API (``zadd(name, member, score)``) that redis-py 5 refuses, so only its key/value phases
run there.
"""

from __future__ import annotations

import argparse
import operator
import os
import pickle
import sqlite3
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from typing import Any

import persisty
from persisty.kv import EventLog, KeyValue, TimeSeries

try:
    import rstore
except ImportError:  # pragma: no cover - optional peer library
    rstore = None

PG = os.environ.get("PERSISTY_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
REDIS = os.environ.get("PERSISTY_TEST_REDIS", "redis://127.0.0.1:6379/0")


def timed(fn: Callable[[], Any], ops: int) -> float:
    start = time.perf_counter()
    fn()
    return ops / (time.perf_counter() - start)


def bench_persisty(url: str, n: int, points: int, events: int, len_keys: int) -> dict[str, float]:
    ns = "b" + uuid.uuid4().hex[:8]
    db = persisty.connect(url, namespace=ns)
    kv, ts, log = KeyValue(db), TimeSeries(db), EventLog(db)
    keys = [f"key{i}" for i in range(n)]
    r: dict[str, float] = {}
    r["set"] = timed(lambda: [kv.set(k, i) for i, k in enumerate(keys)], n)
    r["get"] = timed(lambda: [kv.get(k) for k in keys], n)
    fill = {f"fill{i}": i for i in range(len_keys - n)}
    for chunk in range(0, len(fill), 1000):  # up to len_keys pairs, in bulk
        kv.set_many(dict(list(fill.items())[chunk : chunk + 1000]))
    assert len(kv) == max(n, len_keys)
    r["has"] = timed(lambda: [kv.has(k) for k in keys[:1000]], 1000)
    r["len"] = timed(lambda: [len(kv) for _ in range(20)], 20)
    data = [(t, "abcdefg") for t in range(points)]
    r["extend"] = timed(lambda: ts.extend("s", *data), points)
    r["range"] = timed(lambda: [ts.range("s", 5000, n=1000) for _ in range(10)], 10)
    r["apply"] = timed(lambda: [log.apply("e", {"n": i}) for i in range(APPLIES)], APPLIES)
    for i in range(events - APPLIES):
        log.apply("e", {"n": (operator.add, 1)} if i else {"n": i})
    r["current"] = timed(lambda: [log.current("e") for _ in range(20)], 20)
    for name in ("drop_tables", "drop"):
        if hasattr(db, name):
            getattr(db, name)()
            break
    db.close()
    return r


def bench_rstore(
    dsn: str, n: int, points: int, events: int, kv_only: bool, len_keys: int
) -> dict[str, float]:
    assert rstore is not None
    ns = "b" + uuid.uuid4().hex[:8]
    r: dict[str, float] = {}
    with rstore.Store(dsn, namespace=ns, frozen=False) as s:
        keys = [f"key{i}" for i in range(n)]
        r["set"] = timed(lambda: [s.set(k, i) for i, k in enumerate(keys)], n)
        r["get"] = timed(lambda: [s.get(k) for k in keys], n)
        rows = [(s._ns_key(f"fill{i}"), s._value_to_store(i)) for i in range(len_keys - n)]
        backend = s._backend  # up to len_keys pairs, in bulk: rstore has no batch write
        if dsn.startswith("postgresql"):
            with backend._conn.cursor() as c:
                c.executemany("INSERT INTO _kv VALUES (%s,%s)", rows)
            backend._conn.commit()
        elif hasattr(backend, "_conn"):
            backend._conn.executemany("INSERT OR REPLACE INTO _kv VALUES (?,?)", rows)
            backend._conn.commit()
        else:
            pipe = backend._redis.pipeline()
            for k, v in rows:
                pipe.set("kv" + k, v)
            pipe.execute()
        assert len(s) == max(n, len_keys)
        r["has"] = timed(lambda: [s.has(k) for k in keys[:20]], 20)
        r["len"] = timed(lambda: [len(s) for _ in range(5)], 5)
        if not kv_only:
            data = [(t, "abcdefg") for t in range(points)]
            r["extend"] = timed(lambda: s.extend("s", *data), points)
            r["range"] = timed(lambda: [s.range("s", 5000, n=1000) for _ in range(10)], 10)
            r["apply"] = timed(
                lambda: [s.apply("e", {"n": i}, t=i + 1) for i in range(APPLIES)], APPLIES
            )
            op = pickle.dumps(operator.add, protocol=4)
            es = [
                (s._ns_key("e"), i + 1, "n", op, s._value_to_store(1))
                for i in range(APPLIES, events)
            ]
            if dsn.startswith("postgresql"):  # the rows its apply writes, in bulk
                with backend._conn.cursor() as c:
                    c.executemany("INSERT INTO _es VALUES (%s,%s,%s,%s,%s)", es)
                backend._conn.commit()
            else:
                backend._conn.executemany("INSERT INTO _es VALUES (?,?,?,?,?)", es)
                backend._conn.commit()
            assert s.current("e") == {"n": APPLIES - 1 + events - APPLIES}
            r["current"] = timed(lambda: [s.current("e") for _ in range(3)], 3)
        s.discard()
    return r


def bench_raw_sqlite(path: str, n: int) -> dict[str, float]:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE IF NOT EXISTS kv (k TEXT PRIMARY KEY, v TEXT)")
    keys = [f"key{i}" for i in range(n)]

    def put() -> None:
        for i, k in enumerate(keys):
            conn.execute("INSERT OR REPLACE INTO kv VALUES (?, ?)", (k, str(i)))
            conn.commit()

    r = {
        "set": timed(put, n),
        "get": timed(
            lambda: [conn.execute("SELECT v FROM kv WHERE k = ?", (k,)).fetchone() for k in keys], n
        ),
    }
    conn.close()
    return r


def bench_raw_redis(n: int) -> dict[str, float]:
    import redis

    client = redis.Redis.from_url(REDIS)
    prefix = "rawkv" + uuid.uuid4().hex[:6] + ":"
    keys = [prefix + f"key{i}" for i in range(n)]
    r = {
        "set": timed(lambda: [client.set(k, str(i)) for i, k in enumerate(keys)], n),
        "get": timed(lambda: [client.get(k) for k in keys], n),
    }
    for start in range(0, n, 1000):
        client.delete(*keys[start : start + 1000])
    client.close()
    return r


APPLIES = 1000  # timed applies (--applies): rstore's each read its whole sequence
PHASES = ("set", "get", "has", "len", "extend", "range", "apply", "current")


def report(engine: str, mine: dict[str, float], peers: dict[str, dict[str, float]]) -> None:
    print(f"\n## {engine}\n")
    names = list(peers)
    print("| phase | persisty ops/s | " + " | ".join(f"{p} ops/s | ÷ {p}" for p in names) + " |")
    print("|---|---:|" + "---:|---:|" * len(names))
    for phase in PHASES:
        if phase not in mine:
            continue
        row = [f"{mine[phase]:,.0f}"]
        for p in names:
            other = peers[p].get(phase)
            row += ["-", "-"] if other is None else [f"{other:,.0f}", f"{mine[phase] / other:.2f}x"]
        print(f"| {phase} | " + " | ".join(row) + " |")


def median_report(
    engine: str, runs: list[tuple[dict[str, float], dict[str, dict[str, float]]]]
) -> None:
    """The median ops/s of persisty and each peer's ratio: median (min-max) over the runs."""
    print(f"\n## {engine} (median of {len(runs)} runs; ratio spread min-max)\n")
    names = list(runs[0][1])
    print("| phase | persisty ops/s | " + " | ".join(f"÷ {p}" for p in names) + " |")
    print("|---|---:|" + "---:|" * len(names))
    for phase in PHASES:
        mine = [m[phase] for m, _ in runs if phase in m]
        if not mine:
            continue
        row = [f"{statistics.median(mine):,.0f}"]
        for p in names:
            ratios = [m[phase] / peers[p][phase] for m, peers in runs if phase in peers.get(p, {})]
            row.append(
                f"{statistics.median(ratios):,.2f}x ({min(ratios):,.2f}-{max(ratios):,.2f})"
                if ratios
                else "-"
            )
        print(f"| {phase} | " + " | ".join(row) + " |")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=2_000, help="keys set and read one by one")
    parser.add_argument("--len-keys", type=int, default=50_000, help="pairs when has/len run")
    parser.add_argument("--points", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--engines", default="sqlite,postgresql,redis")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--applies", type=int, default=1000, help="timed applies")
    args = parser.parse_args()
    global APPLIES
    APPLIES = args.applies
    results: dict[str, list[tuple[dict[str, float], dict[str, dict[str, float]]]]] = {}
    for run in range(args.runs):
        for engine in args.engines.split(","):
            results.setdefault(engine, []).append(one_run(engine, args, run))
    for engine, runs in results.items():
        median_report(engine, runs)


def one_run(
    engine: str, args: argparse.Namespace, run: int
) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    tmp = tempfile.mkdtemp(prefix="bench-kv-")
    peers: dict[str, dict[str, float]] = {}
    if engine == "sqlite":
        mine = bench_persisty(
            f"sqlite:///{tmp}/persisty.db", args.n, args.points, args.events, args.len_keys
        )
        if rstore is not None:
            peers["rstore"] = bench_rstore(
                f"sqlite://{tmp}/rstore.store",
                args.n,
                args.points,
                args.events,
                False,
                args.len_keys,
            )
        peers["raw sqlite3"] = bench_raw_sqlite(f"{tmp}/raw.db", args.n)
    elif engine == "postgresql":
        mine = bench_persisty(PG, args.n, args.points, args.events, args.len_keys)
        if rstore is not None:
            try:
                peers["rstore"] = bench_rstore(
                    PG, args.n, args.points, args.events, False, args.len_keys
                )
            except Exception as e:  # psycopg2 missing
                print(f"rstore on PostgreSQL: {e}")
    else:
        mine = bench_persisty(REDIS, args.n, args.points, args.events, args.len_keys)
        if rstore is not None:
            peers["rstore"] = bench_rstore(
                REDIS, args.n, args.points, args.events, True, args.len_keys
            )
        peers["raw redis-py"] = bench_raw_redis(args.n)
    report(f"{engine}, run {run + 1}", mine, peers)
    return mine, peers


if __name__ == "__main__":
    main()
