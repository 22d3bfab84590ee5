"""persisty's memory backend vs a plain dict doing the same work (the floor of overhead).

.venv/bin/python benchmarks/bench_memory.py --n 50000 [--runs 3]
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from workload import BenchItem, Contender, PersistyContender, arguments, run

import persisty


class DictContender(Contender):
    """A dict of dataclass instances plus an owner index: what hand-written code would do."""

    name = "dict"
    baseline = True

    def setup(self) -> None:
        self.rows: dict[str, BenchItem] = {}
        self.by_owner: dict[str, set[str]] = {}

    def bulk_create(self, rows: Sequence[dict[str, Any]]) -> None:
        for r in rows:
            self.rows[r["id"]] = BenchItem(**r)
            self.by_owner.setdefault(r["owner"], set()).add(r["id"])

    def read(self, key: str) -> Any:
        return self.rows.get(key)

    def read_batch(self, keys: Sequence[str]) -> list[Any]:
        return [self.rows.get(k) for k in keys]

    def update(self, row: dict[str, Any]) -> None:
        self.rows[row["id"]] = BenchItem(**row)

    def patch(self, change: dict[str, Any]) -> None:
        key = change["id"]
        self.rows[key] = dataclasses.replace(
            self.rows[key], score=change["score"], title=change["title"]
        )

    def search(self, owner: str) -> list[Any]:
        items = [self.rows[k] for k in self.by_owner.get(owner, ())]
        return sorted(items, key=lambda i: (-i.score, i.id))[:20]

    def count(self, owner: str) -> int:
        return len(self.by_owner.get(owner, ()))

    def delete(self, key: str) -> None:
        item = self.rows.pop(key)
        self.by_owner[item.owner].discard(key)


if __name__ == "__main__":
    args = arguments()
    # a fresh database per run
    run(
        [
            DictContender(),
            PersistyContender(
                "persisty memory", lambda: persisty.connect("memory://").store(BenchItem)
            ),
        ],
        n=args.n,
        seed=args.seed,
        runs=args.runs,
    )
