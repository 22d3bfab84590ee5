"""The standard workload every persisty benchmark runs, and the harness that times it.

A *contender* runs the workload its own way (persisty on some engine, a raw driver, a peer
library). ``run()`` times every contender on the same data in the same process and prints
ops/s per phase and each contender's ratio to the baseline (the first contender given a
``baseline=True`` flag, usually the raw driver).

Phases (``n`` items, 50,000 by default, shaped {id, title ~30 chars, owner of 100, score
int, created_at, tags[3]}):

    bulk create   n items, in batches of 1,000
    read          10,000 random single reads by key
    read_batch    10,000 random keys in batches of 100
    update        5,000 single updates (the whole item written, score and title changed)
    patch         5,000 single-item patches ``store.patch(key, {"score": …, "title": …})``,
                  each committed on its own (raw SQL: ``UPDATE … SET score=?, title=?
                  WHERE id=?`` + commit)
    search        1,000 searches: owner == X order by score desc limit 20
    count         1,000 counts: owner == X
    delete        5,000 single deletes by key

Run one: ``.venv/bin/python benchmarks/bench_memory.py --n 50000``.
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import string
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from persisty import F, Index, stored
from persisty.store import Edit, Store

PHASES = ("bulk_create", "read", "read_batch", "update", "patch", "search", "count", "delete")
OWNERS = [f"owner-{i:02d}" for i in range(100)]


@stored(indexes=[Index("owner", "score")])
class BenchItem:
    """The item every benchmark stores."""

    id: str
    title: str
    owner: str
    score: int
    created_at: datetime
    tags: list[str]


def make_rows(n: int, seed: int = 1) -> list[dict[str, Any]]:
    """``n`` rows as plain dicts (what raw drivers get); the same for a seed."""
    rnd = random.Random(seed)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    letters = string.ascii_letters + " "
    return [
        {
            "id": str(uuid.UUID(int=rnd.getrandbits(128))),
            "title": "".join(rnd.choices(letters, k=30)),
            "owner": rnd.choice(OWNERS),
            "score": rnd.randint(0, 1_000_000),
            "created_at": start + timedelta(seconds=i),
            "tags": rnd.sample(["red", "green", "blue", "black", "white", "gold"], 3),
        }
        for i in range(n)
    ]


class Contender:
    """One way of running the workload. Override every phase method."""

    name = "contender"
    baseline = False

    def setup(self) -> None:
        """Create an empty table/keyspace."""

    def teardown(self) -> None:
        """Drop what ``setup`` made and close connections."""

    def bulk_create(self, rows: Sequence[dict[str, Any]]) -> None:
        raise NotImplementedError

    def read(self, key: str) -> Any:
        raise NotImplementedError

    def read_batch(self, keys: Sequence[str]) -> list[Any]:
        raise NotImplementedError

    def update(self, row: dict[str, Any]) -> None:
        raise NotImplementedError

    def patch(self, change: dict[str, Any]) -> None:
        """Set ``score`` and ``title`` of the item ``change["id"]`` (nothing else)."""
        raise NotImplementedError

    def search(self, owner: str) -> list[Any]:
        raise NotImplementedError

    def count(self, owner: str) -> int:
        raise NotImplementedError

    def delete(self, key: str) -> None:
        raise NotImplementedError


class PersistyContender(Contender):
    """The workload through any sync persisty Store of :class:`BenchItem`."""

    def __init__(
        self,
        name: str,
        open_store: Callable[[], Store[BenchItem]],
        close: Callable[[], None] = lambda: None,
    ) -> None:
        self.name = name
        self._open = open_store
        self._close = close
        self.store: Store[BenchItem]

    def setup(self) -> None:
        self.store = self._open()

    def teardown(self) -> None:
        self._close()

    def bulk_create(self, rows: Sequence[dict[str, Any]]) -> None:
        results = self.store.edit_batch([Edit.create(BenchItem(**r)) for r in rows])
        assert all(r.ok for r in results)

    def read(self, key: str) -> Any:
        return self.store.read(key)

    def read_batch(self, keys: Sequence[str]) -> list[Any]:
        return self.store.read_batch(keys)

    def update(self, row: dict[str, Any]) -> None:
        self.store.update(BenchItem(**row))

    def patch(self, change: dict[str, Any]) -> None:
        self.store.patch(change["id"], {"score": change["score"], "title": change["title"]})

    def search(self, owner: str) -> list[Any]:
        return self.store.search(F.owner == owner, order=[-F.score], limit=20).items

    def count(self, owner: str) -> int:
        return self.store.count(F.owner == owner)

    def delete(self, key: str) -> None:
        self.store.delete(key)


@dataclass
class Result:
    """Ops per second for each phase of one contender."""

    name: str
    ops: dict[str, float] = field(default_factory=dict)
    baseline: bool = False


def _time(fn: Callable[[], Any], count: int) -> float:
    gc.collect()
    start = time.perf_counter()
    fn()
    return count / (time.perf_counter() - start)


@dataclass
class Operations:
    """The data and operations of one workload run (the same for a given ``n`` and seed)."""

    rows: list[dict[str, Any]]
    reads: list[str]
    updates: list[dict[str, Any]]
    patches: list[dict[str, Any]]
    owners: list[str]
    deletes: list[str]

    @property
    def batches(self) -> list[list[str]]:
        return [self.reads[i : i + 100] for i in range(0, len(self.reads), 100)]


def operations(n: int, seed: int = 1) -> Operations:
    """The workload's operations for ``n`` items (patches are drawn last, so the other
    phases are the ones every earlier version of this workload ran)."""
    rows = make_rows(n, seed)
    rnd = random.Random(seed + 1)
    keys = [r["id"] for r in rows]
    reads = [rnd.choice(keys) for _ in range(min(10_000, 2 * n))]
    updates = [
        dict(r, score=r["score"] + 1, title=r["title"][::-1])
        for r in rnd.sample(rows, min(5_000, n // 2))
    ]
    owners = [rnd.choice(OWNERS) for _ in range(1_000)]
    deletes = rnd.sample(keys, min(5_000, n // 2))
    patches = [
        {"id": r["id"], "score": r["score"] + 2, "title": r["title"].swapcase()}
        for r in rnd.sample(rows, min(5_000, n // 2))
    ]
    return Operations(rows, reads, updates, patches, owners, deletes)


def run_one(c: Contender, n: int, seed: int = 1) -> Result:
    """Time every phase of the workload for one contender."""
    w = operations(n, seed)
    result = Result(c.name, baseline=c.baseline)
    c.setup()
    try:

        def bulk() -> None:
            for i in range(0, n, 1000):
                c.bulk_create(w.rows[i : i + 1000])

        result.ops["bulk_create"] = _time(bulk, n)
        result.ops["read"] = _time(lambda: [c.read(k) for k in w.reads], len(w.reads))
        batches = w.batches
        result.ops["read_batch"] = _time(lambda: [c.read_batch(b) for b in batches], len(w.reads))
        result.ops["update"] = _time(lambda: [c.update(r) for r in w.updates], len(w.updates))
        result.ops["patch"] = _time(lambda: [c.patch(p) for p in w.patches], len(w.patches))
        result.ops["search"] = _time(lambda: [c.search(o) for o in w.owners], len(w.owners))
        result.ops["count"] = _time(lambda: [c.count(o) for o in w.owners], len(w.owners))
        result.ops["delete"] = _time(lambda: [c.delete(k) for k in w.deletes], len(w.deletes))
    finally:
        c.teardown()
    return result


def run_interleaved(
    contenders: Sequence[Contender], n: int, seed: int, rounds: int
) -> list[Result]:
    """The standard workload (same data and operations as ``workload.run_one``), with the
    contenders taking turns slice by slice inside every phase, so that load from other jobs
    on the machine hits both alike. Repeatable phases run ``rounds`` times; the best is kept.
    """
    w = operations(n, seed)
    rows, reads, updates, owners, deletes = w.rows, w.reads, w.updates, w.owners, w.deletes
    batches = w.batches

    def slices(ops: Sequence[Any], size: int) -> list[Sequence[Any]]:
        return [ops[i : i + size] for i in range(0, len(ops), size)]

    phases: list[tuple[str, list[Sequence[Any]], Callable[[Contender, Any], Any], int, int]] = [
        ("bulk_create", slices(rows, 1000), lambda c, part: c.bulk_create(part), n, 1),
        ("read", slices(reads, 500), lambda c, part: [c.read(k) for k in part], len(reads), rounds),
        (
            "read_batch",
            slices(batches, 10),
            lambda c, part: [c.read_batch(b) for b in part],
            len(reads),
            rounds,
        ),
        (
            "update",
            slices(updates, 250),
            lambda c, part: [c.update(r) for r in part],
            len(updates),
            rounds,
        ),
        (
            "patch",
            slices(w.patches, 250),
            lambda c, part: [c.patch(r) for r in part],
            len(w.patches),
            rounds,
        ),
        (
            "search",
            slices(owners, 50),
            lambda c, part: [c.search(o) for o in part],
            len(owners),
            rounds,
        ),
        (
            "count",
            slices(owners, 50),
            lambda c, part: [c.count(o) for o in part],
            len(owners),
            rounds,
        ),
        (
            "delete",
            slices(deletes, 250),
            lambda c, part: [c.delete(k) for k in part],
            len(deletes),
            1,
        ),
    ]
    results = [Result(c.name, baseline=c.baseline) for c in contenders]
    for c in contenders:
        c.setup()
    try:
        for name, parts, fn, count, times in phases:
            print(f"  {name} …", flush=True)
            for _ in range(times):
                spent = [0.0] * len(contenders)
                gc.collect()
                for i, part in enumerate(parts):
                    order = list(range(len(contenders)))
                    if i % 2:
                        order.reverse()
                    for j in order:
                        start = time.perf_counter()
                        fn(contenders[j], part)
                        spent[j] += time.perf_counter() - start
                for r, t in zip(results, spent, strict=True):
                    r.ops[name] = max(r.ops.get(name, 0.0), count / t)
    finally:
        for c in contenders:
            c.teardown()
    return results


def table(results: Sequence[Result]) -> str:
    """A Markdown table: ops/s per phase, and ratio to the baseline in parentheses."""
    base = next((r for r in results if r.baseline), results[0])
    head = "| phase | " + " | ".join(r.name for r in results) + " |"
    sep = "|---|" + "---:|" * len(results)
    lines = [head, sep]
    for p in PHASES:
        cells = []
        for r in results:
            v = r.ops.get(p)
            if v is None:
                cells.append("-")
            elif r is base:
                cells.append(f"{v:,.0f}")
            else:
                cells.append(f"{v:,.0f} ({v / base.ops[p]:.2f}x)")
        lines.append(f"| {p} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def median_table(runs: Sequence[Sequence[Result]]) -> str:
    """A Markdown table over several runs of the same contenders: per phase the median
    ops/s, and for each non-baseline contender the median ratio to the baseline with the
    spread (lowest-highest ratio) of the runs in brackets."""
    names = [r.name for r in runs[0]]
    base_i = next((i for i, r in enumerate(runs[0]) if r.baseline), 0)
    head = "| phase | " + " | ".join(names) + " |"
    lines = [f"median of {len(runs)} runs", "", head, "|---|" + "---:|" * len(names)]
    for p in PHASES:
        if any(p not in run[base_i].ops for run in runs):
            continue
        cells = []
        for i in range(len(names)):
            ops = [run[i].ops[p] for run in runs if p in run[i].ops]
            if not ops:
                cells.append("-")
                continue
            med = statistics.median(ops)
            if i == base_i:
                cells.append(f"{med:,.0f}")
                continue
            ratios = [run[i].ops[p] / run[base_i].ops[p] for run in runs if p in run[i].ops]
            spread = f"{min(ratios):.2f}-{max(ratios):.2f}" if len(ratios) > 1 else ""
            cells.append(
                f"{med:,.0f} ({statistics.median(ratios):.2f}x"
                + (f", {spread})" if spread else ")")
            )
        lines.append(f"| {p} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def run(
    contenders: Sequence[Contender], n: int = 50_000, seed: int = 1, runs: int = 1
) -> list[list[Result]]:
    """Run every contender on the same workload ``runs`` times; print each run's table (and
    the median table when there are several) and return the results of every run."""
    every: list[list[Result]] = []
    for i in range(runs):
        results = []
        for c in contenders:
            print(f"run {i + 1}/{runs}: {c.name} (n={n:,}) …", flush=True)
            results.append(run_one(c, n, seed))
        print()
        print(table(results))
        print()
        every.append(results)
    if runs > 1:
        print(median_table(every))
    return every


def arguments(default_n: int = 50_000) -> argparse.Namespace:
    """``--n`` (items), ``--seed`` and ``--runs`` (independent runs, reported with their
    median and spread), shared by every benchmark script."""
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=default_n)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument(
        "--runs",
        type=int,
        default=1,
        help="independent runs; with several, a median table with the spread",
    )
    return p.parse_args()
