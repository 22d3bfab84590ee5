"""The cache layer over SQLite: the standard workload, then repeated reads of a hot set.

    .venv/bin/python benchmarks/bench_cache.py [--n 50000] [--url postgresql://…] [--repeated-only]

Contenders: the uncached SQLite store (file on disk; the baseline), the same store behind
``cached()`` with the in-process LRU, and behind ``cached(cache="redis://…")``. The
standard workload reads random keys (mostly once each, so mostly misses); the second table
is what a cache is for: 1,000 hot keys read 20 times each, 20 distinct searches and counts
repeated 50 times each, with the cache warmed by one pass first; each timing is the best of
seven runs, because the ratio is what matters and a busy machine only ever slows a run down.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).parent))

from workload import OWNERS, BenchItem, PersistyContender, make_rows, run

import persisty
from persisty.layers import cached
from persisty.query import F
from persisty.store import Edit, Store

REDIS_URL = os.environ.get("PERSISTY_TEST_REDIS", "redis://127.0.0.1:6379/0")


def sqlite_store(path: Path) -> tuple[Callable[[], Store[BenchItem]], Callable[[], None]]:
    """Open/close a fresh SQLite file database."""
    state: dict[str, Any] = {}

    def open_store() -> Store[BenchItem]:
        if path.exists():
            path.unlink()
        state["db"] = persisty.connect(f"sqlite:///{path}")
        return state["db"].store(BenchItem)  # type: ignore[no-any-return]

    def close() -> None:
        state["db"].close()

    return open_store, close


def server_store(url: str) -> tuple[Callable[[], Store[BenchItem]], Callable[[], None]]:
    """Open/close a fresh namespace on a database server (tables dropped on close)."""
    state: dict[str, Any] = {}

    def open_store() -> Store[BenchItem]:
        state["db"] = persisty.connect(url, namespace="bench" + uuid.uuid4().hex[:8])
        return state["db"].store(BenchItem)  # type: ignore[no-any-return]

    def close() -> None:
        state["db"].drop_tables()
        state["db"].close()

    return open_store, close


def layered(base: Callable[[], Store[BenchItem]], **options: Any) -> Callable[[], Store[BenchItem]]:
    return lambda: cached(base(), **options)


def _best(fn: Callable[[], Any], count: int, rounds: int = 7) -> float:
    """Ops/s of the best of ``rounds`` timings (the machine may be busy with other work)."""
    best = 0.0
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        best = max(best, count / (time.perf_counter() - start))
    return best


def repeated(name: str, store: Store[BenchItem], keys: list[str]) -> dict[str, float]:
    """Ops/s of repeated reads, searches and counts (after one warming pass), best of 7."""
    rnd = random.Random(5)
    hot = rnd.sample(keys, 1000)
    reads = hot * 20
    rnd.shuffle(reads)
    owners = rnd.sample(OWNERS, 20)
    batches = [reads[i : i + 100] for i in range(0, 2000, 100)]
    for k in hot:
        store.read(k)

    def read() -> None:
        for k in reads:
            store.read(k)

    def read_batch() -> None:
        for _ in range(10):
            for b in batches:
                store.read_batch(b)

    def search() -> None:
        for _ in range(50):
            for o in owners:
                store.search(F.owner == o, order=[-F.score], limit=20)

    def count() -> None:
        for _ in range(50):
            for o in owners:
                store.count(F.owner == o)

    search()
    count()
    result = {
        "read (hot)": _best(read, len(reads)),
        "read_batch (hot)": _best(read_batch, 10 * 2000),
        "search (repeated)": _best(search, 50 * len(owners)),
        "count (repeated)": _best(count, 50 * len(owners)),
    }
    print(f"  {name}: " + ", ".join(f"{p} {v:,.0f}/s" for p, v in result.items()), flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--runs",
        type=int,
        default=1,
        help="independent runs of the standard workload (median table)",
    )
    parser.add_argument("--url", default="", help="a SQL server URL instead of a SQLite file")
    parser.add_argument("--repeated-only", action="store_true", help="skip the standard workload")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="persisty-bench-cache-"))
    prefix = f"persisty:bench:{uuid.uuid4().hex}:"
    engine = urlsplit(args.url).scheme.split("+")[0] if args.url else "sqlite"
    base, close = server_store(args.url) if args.url else sqlite_store(tmp / "bench.db")
    if not args.repeated_only:
        plain = PersistyContender(f"{engine} (uncached)", base, close)
        plain.baseline = True
        lru = PersistyContender(f"{engine} + cached LRU", layered(base, max_items=100_000), close)
        shared = PersistyContender(
            f"{engine} + cached Redis", layered(base, cache=REDIS_URL, prefix=prefix), close
        )
        run([plain, lru, shared], n=args.n, seed=args.seed, runs=args.runs)

    print(f"\nrepeated reads (hot set), {engine}:")
    rows = make_rows(args.n, args.seed)
    results = []
    for name, options in (
        (f"{engine} (uncached)", None),
        (f"{engine} + cached LRU", {}),
        (f"{engine} + cached Redis", {"cache": REDIS_URL, "prefix": prefix + "r:"}),
    ):
        store = base()
        for i in range(0, len(rows), 1000):
            store.edit_batch([Edit.create(BenchItem(**r)) for r in rows[i : i + 1000]])
        s = store if options is None else cached(store, max_items=100_000, **options)
        results.append((name, repeated(name, s, [r["id"] for r in rows])))
        if options is not None:
            s.close()  # type: ignore[attr-defined]
        close()
    base_ops = results[0][1]
    phases = list(base_ops)
    print()
    print("| phase | " + " | ".join(n for n, _ in results) + " |")
    print("|---|" + "---:|" * len(results))
    for p in phases:
        cells = [f"{base_ops[p]:,.0f}"] + [
            f"{r[p]:,.0f} ({r[p] / base_ops[p]:.1f}x)" for _, r in results[1:]
        ]
        print(f"| {p} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
