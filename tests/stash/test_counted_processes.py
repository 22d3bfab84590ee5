"""``StoreStash(counted=True)`` written by several real processes at once (dumps, deletes,
batches, adds over one shared set of keys): afterwards ``len`` (one read of the count item)
is exactly the number of entries the engine holds, on a SQLite file, PostgreSQL and
MariaDB."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest
from tests.conftest import MYSQL_URL, POSTGRES_URL

import persisty
from persisty.stash import StoreStash

WRITERS = 4
ROUNDS = 60
KEYS = 24  # few keys, so the writers keep creating and deleting the same ones


def _writer(url: str, ns: str, seed: int) -> str:
    return textwrap.dedent(f"""
        import random
        import persisty
        from persisty.stash import StoreStash
        rng = random.Random({seed})
        db = persisty.connect({url!r}, namespace={ns!r})
        stash = StoreStash(db, "shared", counted=True)
        keys = [f"k{{i}}" for i in range({KEYS})]
        for n in range({ROUNDS}):
            op = rng.random()
            if op < 0.4:
                stash.dump(rng.choice(keys), {{"by": {seed}, "n": n}})
            elif op < 0.7:
                stash.delete(rng.choice(keys))
            elif op < 0.85:
                stash.dump_all((k, n) for k in rng.sample(keys, 5))
            else:
                stash.add(rng.choice(keys), n)
        db.close()
    """)


@pytest.mark.parametrize("engine", ["sqlite", POSTGRES_URL, MYSQL_URL])
def test_len_is_exact_after_concurrent_writers(engine: str, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'counted.db'}" if engine == "sqlite" else engine
    ns = "n" + uuid.uuid4().hex[:10]
    db = persisty.connect(url, namespace=ns)
    try:
        stash = StoreStash(db, "shared", counted=True)
        stash.dump_all((f"k{i}", i) for i in range(0, KEYS, 2))  # some there before
        assert len(stash) == KEYS // 2
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", _writer(url, ns, seed)],
                cwd=tmp_path,
                stderr=subprocess.PIPE,
            )
            for seed in range(WRITERS)
        ]
        for p in procs:
            _, err = p.communicate(timeout=300)
            assert p.returncode == 0, err.decode()
        native = stash.store.count()  # what the engine holds, counted by the engine
        listed = set(stash.keys())
        assert len(listed) == native
        assert len(stash) == native  # the count item, kept in each write's commit
        reopened = StoreStash(db, "shared", counted=True)
        assert len(reopened) == native
        stash.clear()
        assert len(stash) == 0 and stash.store.count() == 0
        db.drop_tables()  # type: ignore[attr-defined]  # (a SQL database's)
    finally:
        db.close()
