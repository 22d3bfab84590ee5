"""Stashes and @persisted against their peers, in one run.

    .venv/bin/python benchmarks/bench_stash.py [--n 5000] [--repeat 3]

Stash phases (ops/s): ``set`` (n dumps), ``get`` (n random reads), ``exists`` (n, half of
them missing), ``len`` (200 calls) and ``keys`` (20 full listings), for ``StoreStash`` on a
SQLite file (plain, ``counted=True``: ``len`` one point read of a count item, and
``local_cache=0``: no process-local answer cache, every read one statement),
``diskcache.Cache`` and ``sqlitedict.SqliteDict`` (autocommit, so every set is durable as
the others'). Memo: the cost of a hit of ``@persisted`` in process against
``functools.cache``, and of a hit served by the store (``store=`` a SQLite file, a fresh
process memory: the decorated function made anew) against ``diskcache.memoize``.
Ratios are persisty ÷ peer in ops/s (above 1: persisty is faster).

How it measures, so that one run's ratios hold on a loaded machine: the contenders take
turns within each repeat (a load that comes and goes hits all of them, not the one that
ran during it), each timing is the best of ``--repeat`` turns (load only ever slows a
run down), the garbage collector is off while a phase is timed (as ``timeit`` does), and
the read phases (everything but ``set``) count the process's CPU time, not the wall clock:
they are CPU-bound (the databases are in the page cache), so time the scheduler gave to
other processes is not charged to whoever was running. ``set`` is timed on the wall clock
(its fsyncs wait on the disk). ``--runs 3`` repeats the whole measurement and prints the
median ratio of each phase with its spread.
"""

from __future__ import annotations

import argparse
import functools
import gc
import os
import random
import shutil
import sqlite3
import statistics
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

OURS = "persisty StoreStash (SQLite)"
COUNTED = "persisty StoreStash counted=True (SQLite)"
UNCACHED = "persisty StoreStash local_cache=0 (SQLite)"
FLOOR = "sqlite3 PRAGMA data_version"
COLD = "persisty StoreStash exists, answer cache emptied before each call"


def timed(fn: Callable[[], Any], clock: Callable[[], float] = time.perf_counter) -> float:
    """How long one call of ``fn`` takes on ``clock``, the collector off meanwhile."""
    gc.collect()
    gc.disable()
    try:
        t0 = clock()
        fn()
        return clock() - t0
    finally:
        gc.enable()


def best_of_turns(
    fns: dict[str, Callable[[], Any]], repeat: int, clock: Callable[[], float]
) -> dict[str, float]:
    """The best time of each of ``fns`` over ``repeat`` turns, the contenders taking turns."""
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(repeat):
        for name, fn in fns.items():
            best[name] = min(best[name], timed(fn, clock))
    return best


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
    counted = StoreStash(db, "bench_counted", counted=True)
    uncached = StoreStash(db, "bench_uncached", local_cache=0)
    dc = diskcache.Cache(str(root / "diskcache"))
    sd = SqliteDict(str(root / "sqlitedict.db"), autocommit=True)
    contenders = [
        Contender(
            OURS,
            store,
            set_=lambda s, k, v: s.dump(k, v),
            get=lambda s, k: s.get(k),
            exists=lambda s, k: s.exists(k),
            length=len,
            keys=lambda s: list(s.keys()),
        ),
        Contender(
            COUNTED,
            counted,
            set_=lambda s, k, v: s.dump(k, v),
            get=lambda s, k: s.get(k),
            exists=lambda s, k: s.exists(k),
            length=len,
            keys=lambda s: list(s.keys()),
        ),
        Contender(
            UNCACHED,
            uncached,
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
    results: dict[str, dict[str, float]] = {c.name: {} for c in contenders}
    for c in contenders:  # set first, once per contender: the reads need the data
        obj = c.obj
        results[c.name]["set"] = n / min(
            timed(lambda c=c, obj=obj: [c.set(obj, k, value) for k in keys]) for _ in range(repeat)
        )
        assert c.length(obj) == n and len(c.keys(obj)) == n
    phases: dict[str, tuple[int, Callable[[Contender, Any], Any]]] = {
        "get": (n, lambda c, obj: [c.get(obj, k) for k in reads]),
        "exists": (n, lambda c, obj: [c.exists(obj, k) for k in probes]),
        "len": (200, lambda c, obj: [c.length(obj) for _ in range(200)]),
        "keys": (20, lambda c, obj: [c.keys(obj) for _ in range(20)]),
    }
    for phase, (count, body) in phases.items():
        fns = {c.name: functools.partial(body, c, c.obj) for c in contenders}
        for name, t in best_of_turns(fns, repeat, time.process_time).items():
            results[name][phase] = count / t
    # a miss of the answer cache (emptied before each call, as a commit would): the
    # header read, one statement and the answer kept
    answers = store._answers
    assert answers is not None

    def cold() -> None:
        for k in probes:
            answers.forget()
            store.exists(k)

    results[COLD] = {"exists": n / min(timed(cold, time.process_time) for _ in range(repeat))}
    # the floor of any answer that asks SQLite: its cheapest statement, on the same file
    # (PRAGMA data_version: what a cache validated by asking SQLite would run per call)
    raw = sqlite3.connect(str(root / "stash.db"), isolation_level=None)

    def floor() -> None:
        for _ in range(n):
            raw.execute("PRAGMA data_version").fetchone()

    results[FLOOR] = {"exists": n / min(timed(floor, time.process_time) for _ in range(repeat))}
    raw.close()
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
    fns = {
        "functools.cache hit": lambda: [cached_fn(a) for a in hits],
        "@persisted hit (in process)": lambda: [memo_fn(a) for a in hits],
    }
    for name, t in best_of_turns(fns, repeat * 5, time.process_time).items():
        out[name] = len(hits) / t

    dc = diskcache.Cache(str(root / "memo-diskcache"))
    dc_fn = dc.memoize()(work)
    for a in args:
        dc_fn(a)
    db = persisty.connect(f"sqlite:///{root / 'memo.db'}")
    filler = persisted(store=db)(work)
    for a in args:
        filler(a)

    def store_hits() -> None:
        fresh = persisted(store=db)(work)  # a new process's view: empty memory, full store
        for a in args:
            fresh(a)

    fns = {
        "diskcache.memoize hit": lambda: [dc_fn(a) for a in args],
        "@persisted hit (store, cold memory)": store_hits,
    }
    for name, t in best_of_turns(fns, repeat, time.process_time).items():
        out[name] = len(args) / t
    dc.close()
    db.close()
    return out


PHASES = ("set", "get", "exists", "len", "keys")


def one_run(n: int, repeat: int) -> tuple[dict[str, dict[str, float]], dict[str, float]]:
    root = Path(tempfile.mkdtemp(prefix="persisty-bench-stash-"))
    try:
        return stash_phases(n, repeat, root), memo_phases(n, repeat, root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def ratios(stash: dict[str, dict[str, float]], memo: dict[str, float]) -> dict[str, float]:
    """persisty ÷ peer per phase (above 1: persisty faster), and the memo hit costs."""
    out = {}
    for label, name in (("", OURS), ("counted ", COUNTED), ("uncached ", UNCACHED)):
        ours = stash[name]
        for phase in PHASES:
            out[f"{label}{phase} vs diskcache"] = ours[phase] / stash["diskcache.Cache"][phase]
            out[f"{label}{phase} vs sqlitedict"] = (
                ours[phase] / stash["sqlitedict.SqliteDict"][phase]
            )
    out["exists on a cache miss vs diskcache"] = (
        stash[COLD]["exists"] / stash["diskcache.Cache"]["exists"]
    )
    out["cheapest SQLite statement vs diskcache exists"] = (
        stash[FLOOR]["exists"] / stash["diskcache.Cache"]["exists"]
    )
    out["in-process hit cost vs functools.cache (target <= 3)"] = (
        memo["functools.cache hit"] / memo["@persisted hit (in process)"]
    )
    out["store hit cost vs diskcache.memoize (target <= 1)"] = (
        memo["diskcache.memoize hit"] / memo["@persisted hit (store, cold memory)"]
    )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--runs", type=int, default=1)
    opts = parser.parse_args()
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    all_ratios: list[dict[str, float]] = []
    for run in range(opts.runs):
        stash, memo = one_run(opts.n, opts.repeat)
        ours, cnt, unc = stash[OURS], stash[COUNTED], stash[UNCACHED]
        print(f"\nrun {run + 1}: stashes, n={opts.n} (ops/s; ratio = StoreStash / diskcache)")
        print(
            f"{'phase':8} {'StoreStash':>12} {'ratio':>7} {'counted':>12} {'ratio':>7} "
            f"{'uncached':>12} {'ratio':>7} {'diskcache':>12} {'sqlitedict':>12}"
        )
        for phase in PHASES:
            d, s = stash["diskcache.Cache"][phase], stash["sqlitedict.SqliteDict"][phase]
            print(
                f"{phase:8} {ours[phase]:12,.0f} {ours[phase] / d:6.2f}x "
                f"{cnt[phase]:12,.0f} {cnt[phase] / d:6.2f}x "
                f"{unc[phase]:12,.0f} {unc[phase] / d:6.2f}x {d:12,.0f} {s:12,.0f}"
            )
        print(
            f"floor: one PRAGMA data_version {stash[FLOOR]['exists']:,.0f}/s "
            f"= {stash[FLOOR]['exists'] / stash['diskcache.Cache']['exists']:.2f}x diskcache exists"
        )
        print(
            f"exists on a cache miss: {stash[COLD]['exists']:,.0f}/s "
            f"= {stash[COLD]['exists'] / stash['diskcache.Cache']['exists']:.2f}x diskcache"
        )
        print("memo hits (calls/s)")
        for name, rate in memo.items():
            print(f"  {name:38} {rate:14,.0f}")
        all_ratios.append(ratios(stash, memo))
    print(f"\nratios over {opts.runs} run(s): median [min - max]")
    for name in all_ratios[0]:
        values = [r[name] for r in all_ratios]
        print(
            f"  {name:54} {statistics.median(values):6.2f}x [{min(values):.2f} - {max(values):.2f}]"
        )
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
