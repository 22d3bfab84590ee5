"""A child process for the kv conformance suite's multi-process and crash tests.

    python -m persisty.testing._kv_worker incr URL DB_NAMESPACE KV_NAMESPACE WORKERS N sync|async
    python -m persisty.testing._kv_worker extend URL DB_NAMESPACE KV_NAMESPACE N sync|async

``incr`` runs WORKERS threads (or asyncio tasks) each calling ``incr("counter")`` N times,
then prints ``retries R`` (the writes tried again after a lost race, by kv and the store);
``extend`` prints ``start`` and extends the series ``crash`` with N points at once.

    python -m persisty.testing._kv_worker churn URL DB_NAMESPACE KV_NAMESPACE SEED N TTL sync|async

``churn`` makes N random writes that add or remove keys (``set``, ``add``, ``delete``,
``pop``, ``set_many``, ``incr``; every value an int) on 12 shared keys, with a ttl of an
hour on about half of them when TTL is ``ttl``, for the suite to check that ``len`` stays
exact.
"""

from __future__ import annotations

import asyncio
import random
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import persisty
import persisty.aio
from persisty.kv import AsyncKeyValue, AsyncTimeSeries, KeyValue, TimeSeries


def _retries(kv: KeyValue | AsyncKeyValue) -> int:
    return kv.retries + int(getattr(kv.raw, "retries", 0))


def _incr(url: str, dbns: str, ns: str, workers: int, n: int, mode: str) -> None:
    if mode == "async":

        async def run() -> None:
            db = persisty.aio.connect(url, namespace=dbns)
            kv = AsyncKeyValue(db, ns)

            async def one() -> None:
                for _ in range(n):
                    await kv.incr("counter")

            await asyncio.gather(*(one() for _ in range(workers)))
            print("retries", _retries(kv), flush=True)
            await db.close()

        asyncio.run(run())
        return
    db = persisty.connect(url, namespace=dbns)
    kv = KeyValue(db, ns)

    def one() -> None:
        for _ in range(n):
            kv.incr("counter")

    with ThreadPoolExecutor(workers) as pool:
        for f in [pool.submit(one) for _ in range(workers)]:
            f.result()
    print("retries", _retries(kv), flush=True)
    db.close()


def _extend(url: str, dbns: str, ns: str, n: int, mode: str) -> None:
    points = [(i, {"v": i, "pad": "x" * 20}) for i in range(n)]
    if mode == "async":

        async def run() -> None:
            ts = AsyncTimeSeries(persisty.aio.connect(url, namespace=dbns), ns)
            await ts.first("crash")
            print("start", flush=True)
            await ts.extend("crash", *points)
            print("done", flush=True)

        asyncio.run(run())
        return
    ts = TimeSeries(persisty.connect(url, namespace=dbns), ns)
    ts.first("crash")
    print("start", flush=True)
    ts.extend("crash", *points)
    print("done", flush=True)


def _churn_steps(seed: int, n: int, ttl: bool) -> list[tuple[str, list[Any]]]:
    rnd = random.Random(seed)
    keys = [f"k{i}" for i in range(12)]
    steps: list[tuple[str, list[Any]]] = []
    for i in range(n):
        op = rnd.choice(["set", "set", "add", "delete", "pop", "set_many", "incr"])
        key = rnd.choice(keys)
        hour = 3600 if ttl and rnd.random() < 0.5 else None
        if op == "set_many":
            steps.append((op, [{k: i for k in rnd.sample(keys, 3)}]))
        elif op == "delete":
            steps.append((op, rnd.sample(keys, 2)))
        elif op in ("set", "add"):
            steps.append((op, [key, i, hour]))
        else:
            steps.append((op, [key]))
    return steps


def _churn(url: str, dbns: str, ns: str, seed: int, n: int, ttl: bool, mode: str) -> None:
    steps = _churn_steps(seed, n, ttl)
    if mode == "async":

        async def run() -> None:
            db = persisty.aio.connect(url, namespace=dbns)
            kv = AsyncKeyValue(db, ns)
            for op, args in steps:
                if op in ("set", "add"):
                    await getattr(kv, op)(args[0], args[1], ttl=args[2])
                elif op == "pop":
                    await kv.pop(args[0], None)
                elif op == "incr":
                    await kv.incr(args[0])
                else:
                    await getattr(kv, op)(*args)
            await db.close()

        asyncio.run(run())
        return
    db = persisty.connect(url, namespace=dbns)
    kv = KeyValue(db, ns)
    for op, args in steps:
        if op in ("set", "add"):
            getattr(kv, op)(args[0], args[1], ttl=args[2])
        elif op == "pop":
            kv.pop(args[0], None)
        elif op == "incr":
            kv.incr(args[0])
        else:
            getattr(kv, op)(*args)
    db.close()


def main(argv: list[str]) -> None:
    if argv[0] == "incr":
        _incr(argv[1], argv[2], argv[3], int(argv[4]), int(argv[5]), argv[6])
    elif argv[0] == "extend":
        _extend(argv[1], argv[2], argv[3], int(argv[4]), argv[5])
    elif argv[0] == "churn":
        _churn(argv[1], argv[2], argv[3], int(argv[4]), int(argv[5]), argv[6] == "ttl", argv[7])
    else:
        raise SystemExit(f"unknown command {argv[0]!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
