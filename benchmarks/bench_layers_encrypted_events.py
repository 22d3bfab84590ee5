"""The encryption, events and relations layers on the standard workload, against the same
SQLite store without the layer (the baseline), plus loading related items batched vs N+1.

Contenders (each on its own SQLite file in a temporary directory):

- ``sqlite`` - the plain store (baseline);
- ``encrypted`` - ``title`` (AES-256-GCM) and each ``tags[]`` element (AES-SIV) encrypted;
- ``observed`` - the events layer with one hook and one ``listen()`` subscriber;
- ``observed+outbox`` - the same with the SQL outbox (each change also written in the
  write's transaction and deleted after delivery);
- ``related`` - the relations layer (``BenchItem`` declares no relations: its overhead only).

Each contender runs twice, in order and then in reverse order, on fresh files, and the better
of its two figures per phase is reported (the machine is shared: this damps position and load
effects).

    .venv/bin/python benchmarks/bench_layers_encrypted_events.py [--n 50000]
"""

from __future__ import annotations

import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from workload import (
    BenchItem,
    PersistyContender,
    Result,
    arguments,
    median_table,
    run_one,
    table,
)

import persisty
from persisty import stored
from persisty.layers import BelongsTo, KeyRing, encrypted, observed, related

_DIR = Path(tempfile.mkdtemp(prefix="persisty-bench-layers-"))


def _db(name: str) -> Any:
    """A new SQLite file database (a fresh file on every call)."""
    return persisty.connect(f"sqlite:///{_DIR / name}-{uuid.uuid4().hex[:8]}.db")


def contenders() -> list[PersistyContender]:
    dbs = {name: _db(name) for name in ("plain", "encrypted", "observed", "outbox", "related")}
    keys = KeyRing({"k1": KeyRing.new_key()})
    seen: list[Any] = []

    def open_observed(outbox: bool = False) -> Any:
        db = dbs["outbox" if outbox else "observed"]
        store = observed(db.store(BenchItem), outbox=outbox)
        store.on_change(lambda change: seen.append(change.key))
        store.listen(maxsize=1000)  # a subscriber that never reads: oldest changes dropped
        return store

    plain = PersistyContender("sqlite", lambda: dbs["plain"].store(BenchItem))
    plain.baseline = True
    return [
        plain,
        PersistyContender(
            "encrypted",
            lambda: encrypted(dbs["encrypted"].store(BenchItem), ["title", "=tags[]"], keys),
        ),
        PersistyContender("observed", open_observed),
        PersistyContender("observed+outbox", lambda: open_observed(outbox=True)),
        PersistyContender(
            "related", lambda: related(dbs["related"].store(BenchItem), dbs["related"])
        ),
    ]


@stored
class Owner:
    id: str
    name: str = ""


@stored
class Post:
    id: str
    owner_id: str | None = None
    owner = BelongsTo(Owner, "owner_id")


def relations_load(n_posts: int = 5_000, n_owners: int = 500) -> None:
    """Loading each post's owner: ``load`` (one read_batch) vs a read per post (N+1)."""
    db = _db("relations")
    owners = db.store(Owner)
    posts = related(db.store(Post), db)
    owners.edit_batch([persisty.Edit.create(Owner(id=f"o{i}")) for i in range(n_owners)])
    posts.edit_batch(
        [
            persisty.Edit.create(Post(id=f"p{i}", owner_id=f"o{i % n_owners}"))
            for i in range(n_posts)
        ]
    )
    items = [p for p in posts.search_all(page_size=1000)]
    start = time.perf_counter()
    batched = posts.load(items, "owner")
    t_batched = time.perf_counter() - start
    start = time.perf_counter()
    naive = [owners.read(p.owner_id) for p in items]
    t_naive = time.perf_counter() - start
    assert batched == naive
    print(
        f"\nrelations: owner of {n_posts:,} posts: load() {n_posts / t_batched:,.0f} items/s, "
        f"a read per post {n_posts / t_naive:,.0f} items/s "
        f"({t_naive / t_batched:.1f}x faster batched)"
    )


def best_of_two(n: int, seed: int) -> list[Result]:
    """Run every contender twice (forward, then reverse order); keep the best per phase."""
    first = [run_one(c, n, seed) for c in contenders()]
    second = [run_one(c, n, seed) for c in reversed(contenders())][::-1]
    best = []
    for a, b in zip(first, second, strict=True):
        best.append(Result(a.name, {p: max(a.ops[p], b.ops[p]) for p in a.ops}, a.baseline))
    return best


if __name__ == "__main__":
    args = arguments()
    # warm up (imports, SQLite, statement caches) so the baseline does not pay for it
    run_one(
        PersistyContender("warm-up", lambda: _db("warmup").store(BenchItem)),
        min(args.n, 5_000),
        args.seed,
    )
    print(f"n={args.n:,}, best of two runs per contender\n")
    every = []
    for _ in range(args.runs):
        every.append(best_of_two(args.n, args.seed))
        print(table(every[-1]), end="\n\n")
    if args.runs > 1:
        print(median_table(every))
    relations_load()
