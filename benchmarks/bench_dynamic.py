"""A runtime-defined store (``persisty.dynamic``) vs the equivalent static ``@stored`` class,
both on SQLite, on the standard workload, taking turns slice by slice in every phase.

.venv/bin/python benchmarks/bench_dynamic.py --n 5000 [--runs 3]
"""

from __future__ import annotations

import statistics
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from workload import (
    PHASES,
    BenchItem,
    PersistyContender,
    Result,
    arguments,
    run_interleaved,
    table,
)

import persisty
from persisty.dynamic import catalog
from persisty.store import Edit

SPEC = {
    "name": "bench_item",
    "attrs": {
        "id": {"type": "str"},
        "title": {"type": "str"},
        "owner": {"type": "str"},
        "score": {"type": "int"},
        "created_at": {"type": "datetime"},
        "tags": {"type": "list", "items": {"type": "str"}},
    },
    "indexes": [["owner", "score"]],
}


class DynamicContender(PersistyContender):
    """The workload through ``catalog(db).store("bench_item")``: items of the generated
    class, built the way the static contender builds ``BenchItem``."""

    def setup(self) -> None:
        super().setup()
        self.cls = self.store.meta.cls

    def bulk_create(self, rows: Sequence[dict[str, Any]]) -> None:
        results = self.store.edit_batch([Edit.create(self.cls(**r)) for r in rows])
        assert all(r.ok for r in results)

    def update(self, row: dict[str, Any]) -> None:
        self.store.update(self.cls(**row))


def main() -> None:
    args = arguments(default_n=5000)
    every: list[list[Result]] = []
    for i in range(args.runs):
        folder = Path(tempfile.mkdtemp(prefix="bench-dynamic-"))
        static_db = persisty.connect(f"sqlite:///{folder / 'static.db'}")
        dynamic_db = persisty.connect(f"sqlite:///{folder / 'dynamic.db'}")
        cat = catalog(dynamic_db)
        cat.define(SPEC)
        static = PersistyContender(
            "static @stored", lambda db=static_db: db.store(BenchItem), static_db.close
        )
        static.baseline = True
        dynamic = DynamicContender("dynamic", lambda c=cat: c.store("bench_item"), dynamic_db.close)
        print(f"run {i + 1}/{args.runs} (n={args.n:,}) …", flush=True)
        results = run_interleaved([static, dynamic], args.n, args.seed, rounds=1)
        print(table(results))
        every.append(results)
    if args.runs > 1:
        print("\nmedian ratio dynamic ÷ static per phase:")
        for phase in PHASES:
            ratios = [r[1].ops[phase] / r[0].ops[phase] for r in every]
            print(
                f"  {phase:12} {statistics.median(ratios):.2f}x "
                f"({min(ratios):.2f}-{max(ratios):.2f})"
            )


if __name__ == "__main__":
    main()
