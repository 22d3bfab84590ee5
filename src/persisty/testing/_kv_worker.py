"""A child process for the kv conformance suite's multi-process and crash tests.

    python -m persisty.testing._kv_worker incr URL DB_NAMESPACE KV_NAMESPACE WORKERS N sync|async
    python -m persisty.testing._kv_worker extend URL DB_NAMESPACE KV_NAMESPACE N sync|async

``incr`` runs WORKERS threads (or asyncio tasks) each calling ``incr("counter")`` N times,
then prints ``retries R`` (the writes tried again after a lost race, by kv and the store);
``extend`` prints ``start`` and extends the series ``crash`` with N points at once.
"""

from __future__ import annotations

import asyncio
import sys
from concurrent.futures import ThreadPoolExecutor

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


def main(argv: list[str]) -> None:
    if argv[0] == "incr":
        _incr(argv[1], argv[2], argv[3], int(argv[4]), int(argv[5]), argv[6])
    elif argv[0] == "extend":
        _extend(argv[1], argv[2], argv[3], int(argv[4]), argv[5])
    else:
        raise SystemExit(f"unknown command {argv[0]!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
