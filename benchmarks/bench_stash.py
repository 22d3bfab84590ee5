"""Stashes and @persisted against their peers, in one run.

    .venv/bin/python benchmarks/bench_stash.py [--n 5000] [--repeat 3]

Stash phases (ops/s; each timing the best of ``--repeat`` runs, because a busy machine only
ever slows a run down): ``set`` (n dumps), ``get`` (n random reads), ``exists`` (n, half of
them missing), ``len`` (200 calls) and ``keys`` (20 full listings), for ``StoreStash`` on a
SQLite file, ``diskcache.Cache`` and ``sqlitedict.SqliteDict`` (autocommit, so every set is
durable as the others'). Memo: the cost of a hit of ``@persisted`` in process against
``functools.cache``, and of a hit served by the store (``store=`` a SQLite file, a fresh
process memory: the decorated function made anew) against ``diskcache.memoize``.
Ratios are persisty ÷ peer in ops/s (above 1: persisty is faster).
"""

from __future__ import annotations

import argparse
import functools
import random
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import diskcache
from sqlitedict import SqliteDict

import persisty
from persisty.memo import persisted
from persisty.stash import StoreStash


def best(fn: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


class Contender:
    def __init__(
        self,
        name: str,
        obj: Any,
        *,
        set_: Callable[[Any, str, Any], None],
        get: Callable[[Any, str], Any],
        exists: Callable[[Any, str], bool],
        length: Callable[[Any], int],
        keys: Callable[[Any], list[str]],
    ) -> None:
        self.name, self.obj = name, obj
        self.set, self.get, self.exists, self.length, self.keys = set_, get, exists, length, keys


def stash_phases(n: int, repeat: int, root: Path) -> dict[str, dict[str, float]]:
    keys = [f"key-{i:06d}" for i in range(n)]
    value = {"title": "x" * 30, "score": 1.5, "tags": ["a", "b", "c"]}
    rng = random.Random(7)
    reads = [rng.choice(keys) for _ in range(n)]
    probes = [rng.choice(keys) if i % 2 else f"missing-{i}" for i in range(n)]

    db = persisty.connect(f"sqlite:///{root / 'stash.db'}")
    store = StoreStash(db, "bench")
    dc = diskcache.Cache(str(root / "diskcache"))
    sd = SqliteDict(str(root / "sqlitedict.db"), autocommit=True)
    contenders = [
        Contender(
            "persisty StoreStash (SQLite)",
            store,
            set_=lambda s, k, v: s.dump(k, v),
            get=lambda s, k: s.get(k),
            exists=lambda s, k: s.exists(k),
            length=len,
            keys=lambda s: list(s.keys()),
        ),
        Contender(
            "diskcache.Cache",
            dc,
            set_=lambda s, k, v: s.set(k, v),
            get=lambda s, k: s.get(k),
            exists=lambda s, k: k in s,
            length=len,
            keys=lambda s: list(s.iterkeys()),
        ),
        Contender(
            "sqlitedict.SqliteDict",
            sd,
            set_=lambda s, k, v: s.__setitem__(k, v),
            get=lambda s, k: s.get(k),
            exists=lambda s, k: k in s,
            length=len,
            keys=lambda s: list(s.keys()),
        ),
    ]
    results: dict[str, dict[str, float]] = {}
    for c in contenders:
        r = results[c.name] = {}
        obj = c.obj
        r["set"] = n / best(lambda c=c, obj=obj: [c.set(obj, k, value) for k in keys], repeat)
        r["get"] = n / best(lambda c=c, obj=obj: [c.get(obj, k) for k in reads], repeat)
        r["exists"] = n / best(lambda c=c, obj=obj: [c.exists(obj, k) for k in probes], repeat)
        assert c.length(obj) == n and len(c.keys(obj)) == n
        r["len"] = 200 / best(lambda c=c, obj=obj: [c.length(obj) for _ in range(200)], repeat)
        r["keys"] = 20 / best(lambda c=c, obj=obj: [c.keys(obj) for _ in range(20)], repeat)
    sd.close()
    dc.close()
    db.close()
    return results


def memo_phases(n: int, repeat: int, root: Path) -> dict[str, float]:
    def work(x: int) -> int:
        return x * 2

    args = list(range(min(n, 1000)))
    hits = args * 20
    cached_fn = functools.cache(work)
    memo_fn = persisted()(work)
    for a in args:
        cached_fn(a), memo_fn(a)
    out: dict[str, float] = {}
    out["functools.cache hit"] = len(hits) / best(lambda: [cached_fn(a) for a in hits], repeat)
    out["@persisted hit (in process)"] = len(hits) / best(
        lambda: [memo_fn(a) for a in hits], repeat
    )

    dc = diskcache.Cache(str(root / "memo-diskcache"))
    dc_fn = dc.memoize()(work)
    for a in args:
        dc_fn(a)
    out["diskcache.memoize hit"] = len(args) / best(lambda: [dc_fn(a) for a in args], repeat)

    db = persisty.connect(f"sqlite:///{root / 'memo.db'}")
    filler = persisted(store=db)(work)
    for a in args:
        filler(a)

    def store_hits() -> None:
        fresh = persisted(store=db)(work)  # a new process's view: empty memory, full store
        for a in args:
            fresh(a)

    out["@persisted hit (store, cold memory)"] = len(args) / best(store_hits, repeat)
    dc.close()
    db.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=3)
    opts = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="persisty-bench-stash-"))
    try:
        stash = stash_phases(opts.n, opts.repeat, root)
        memo = memo_phases(opts.n, opts.repeat, root)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    ours = stash["persisty StoreStash (SQLite)"]
    print(f"stashes, n={opts.n} (ops/s; ratio = StoreStash / peer)")
    print(
        f"{'phase':8} {'StoreStash':>12} {'diskcache':>12} {'ratio':>7} {'sqlitedict':>12} "
        f"{'ratio':>7}"
    )
    for phase in ("set", "get", "exists", "len", "keys"):
        d, s = stash["diskcache.Cache"][phase], stash["sqlitedict.SqliteDict"][phase]
        print(
            f"{phase:8} {ours[phase]:12,.0f} {d:12,.0f} {ours[phase] / d:6.2f}x {s:12,.0f} "
            f"{ours[phase] / s:6.2f}x"
        )
    print("\nmemo hits (calls/s)")
    for name, rate in memo.items():
        print(f"  {name:38} {rate:14,.0f}")
    fc, pm = memo["functools.cache hit"], memo["@persisted hit (in process)"]
    dm, ps = memo["diskcache.memoize hit"], memo["@persisted hit (store, cold memory)"]
    print(f"  in-process hit cost: {fc / pm:.2f}x functools.cache's (target <= 3x)")
    print(f"  store hit cost: {dm / ps:.2f}x diskcache.memoize's (target <= 1x)")


if __name__ == "__main__":
    main()
