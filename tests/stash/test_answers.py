"""The process-local answer cache of ``StoreStash`` on a SQLite file: every commit by
another process, another connection in this process (persisty's or a raw ``sqlite3``
one), a checkpoint or a WAL restart is seen by the very next ``exists``/``get``/``len``;
expiry without a commit is honoured; what cannot be watched asks SQLite."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import persisty
from persisty.stash import AsyncStoreStash, StoreStash
from persisty.stash._walwatch import consistent, watch_for


def _url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 's.db'}"


def _raw(tmp_path: Path) -> sqlite3.Connection:
    return sqlite3.connect(str(tmp_path / "s.db"), isolation_level=None)


def _warm(stash: StoreStash, *keys: str) -> None:
    """Fill the cache (twice each: the second is a hit) so a stale answer would show."""
    for _ in range(2):
        for k in keys:
            stash.exists(k), stash.get(k)
        len(stash)


def test_the_cache_answers_and_is_on(tmp_path: Path) -> None:
    db = persisty.connect(_url(tmp_path))
    stash = StoreStash(db, "t")
    stash.dump("a", {"n": 1})
    _warm(stash, "a", "b")
    assert stash._answers is not None and stash._answers.entry("a") is not None
    assert stash._answers.count() == 1
    assert stash.get("a") == {"n": 1} and stash.exists("a") and not stash.exists("b")
    assert stash.get("b", 7) == 7 and stash.load("b") is None and len(stash) == 1
    got = stash.get("a")
    got["n"] = 99  # a hit decodes anew: a caller's change is not the cache's
    assert stash.get("a") == {"n": 1}
    db.close()


def test_another_connection_in_process_and_raw_sqlite3_are_seen(tmp_path: Path) -> None:
    db, other = persisty.connect(_url(tmp_path)), persisty.connect(_url(tmp_path))
    stash, theirs = StoreStash(db, "t"), StoreStash(other, "t")
    raw = _raw(tmp_path)
    for i in range(30):
        key = f"k{i}"
        _warm(stash, key)
        assert not stash.exists(key)
        theirs.dump(key, i)  # another persisty database (its own connections)
        assert stash.exists(key) and stash.get(key) == i and len(stash) == i + 1
        _warm(stash, key)
        past = "2000-01-01 00:00:00.000000"  # expired: the store's read checks the column
        raw.execute("UPDATE stash_t SET expires_at = ? WHERE key = ?", (past, key))
        assert not stash.exists(key) and stash.get(key) is None and len(stash) == i
        raw.execute("UPDATE stash_t SET expires_at = NULL WHERE key = ?", (key,))
        assert stash.get(key) == i and len(stash) == i + 1
    _warm(stash, "k3")
    raw.execute("DELETE FROM stash_t WHERE key = 'k3'")
    assert not stash.exists("k3") and len(stash) == 29
    raw.close()
    other.close()
    db.close()


def test_checkpoint_and_wal_restart_are_seen(tmp_path: Path) -> None:
    db = persisty.connect(_url(tmp_path))
    other = persisty.connect(_url(tmp_path))
    stash, theirs = StoreStash(db, "t"), StoreStash(other, "t")
    stash.dump("a", 1)
    raw = _raw(tmp_path)
    for mode in ("PASSIVE", "FULL", "RESTART", "TRUNCATE"):
        _warm(stash, "a", "b")
        raw.execute(f"PRAGMA wal_checkpoint({mode})").fetchall()
        assert stash.get("a") == 1 and not stash.exists("b")  # nothing changed
        theirs.dump("b", 2)  # the first commit into a restarted WAL
        assert stash.get("b") == 2 and len(stash) == 2
        _warm(stash, "b")
        raw.execute(f"PRAGMA wal_checkpoint({mode})").fetchall()
        raw.execute("DELETE FROM stash_t WHERE key = 'b'")
        assert not stash.exists("b") and len(stash) == 1
    other.close()
    raw.close()
    db.close()


_PINGPONG = textwrap.dedent("""
    import sys
    import persisty
    from persisty.stash import StoreStash
    stash = StoreStash(persisty.connect(sys.argv[1]), "t")
    for line in sys.stdin:
        op, key = line.split()
        if op == "dump":
            stash.dump(key, key)
        elif op == "delete":
            stash.delete(key)
        else:
            stash.clear()
        print("ok", flush=True)
""")


def test_another_process_committing_between_calls_is_always_seen(tmp_path: Path) -> None:
    import random

    db = persisty.connect(_url(tmp_path))
    stash = StoreStash(db, "t")
    stash.dump("seed", "seed")
    child = subprocess.Popen(
        [sys.executable, "-c", _PINGPONG, _url(tmp_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdin is not None and child.stdout is not None
    rng = random.Random(15)
    expected: dict[str, str] = {"seed": "seed"}
    keys = [f"k{i}" for i in range(6)]
    try:
        for _ in range(150):
            _warm(stash, *keys)
            roll = rng.random()
            key = rng.choice(keys)
            op = "clear" if roll < 0.05 else "delete" if roll < 0.4 else "dump"
            child.stdin.write(f"{op} {key}\n")
            child.stdin.flush()
            assert child.stdout.readline() == "ok\n"
            if op == "clear":
                expected.clear()
            elif op == "delete":
                expected.pop(key, None)
            else:
                expected[key] = key
            for k in keys:
                assert stash.exists(k) == (k in expected)
                assert stash.get(k) == expected.get(k)
            assert len(stash) == len(expected)
    finally:
        child.stdin.close()
        child.wait(timeout=30)
    db.close()


_WRITER = textwrap.dedent("""
    import sys
    import persisty
    from persisty.stash import StoreStash
    stash = StoreStash(persisty.connect(sys.argv[1]), "t")
    for n in range(1, int(sys.argv[2]) + 1):
        stash.dump_all([("v", n), (f"n{n}", n)])
""")


def test_a_free_running_writer_process_is_never_read_stale(tmp_path: Path) -> None:
    db = persisty.connect(_url(tmp_path))
    stash = StoreStash(db, "t")
    stash.dump("v", 0)
    rounds = 300
    child = subprocess.Popen([sys.executable, "-c", _WRITER, _url(tmp_path), str(rounds)])
    last, reads = 0, 0
    while child.poll() is None or reads == 0:
        v = stash.get("v")
        assert v >= last  # never goes back
        if v:
            assert stash.exists(f"n{v}")  # committed with it: seen with it
            assert len(stash) >= v + 1
        last, reads = v, reads + 1
    assert child.returncode == 0
    assert stash.get("v") == rounds and len(stash) == rounds + 1  # the last commit seen
    db.close()


def test_expiry_is_honoured_without_any_commit(tmp_path: Path) -> None:
    import datetime as dt

    db = persisty.connect(_url(tmp_path))
    stash = StoreStash(db, "t")
    stash.dump("forever", 1)
    stash.dump_for("brief", 2, dt.timedelta(milliseconds=300))
    _warm(stash, "brief", "forever")
    assert stash.exists("brief") and len(stash) == 2
    time.sleep(0.4)
    assert not stash.exists("brief") and stash.get("brief") is None and len(stash) == 1
    db.close()


def test_our_own_writes_and_bounds(tmp_path: Path) -> None:
    db = persisty.connect(_url(tmp_path))
    stash = StoreStash(db, "t", local_cache=10)
    for i in range(40):
        _warm(stash, f"k{i}")
        stash.dump(f"k{i}", "x" * 5000 if i % 2 else i)
        assert stash.exists(f"k{i}") and len(stash) == i + 1
    for i in range(40):
        stash.exists(f"k{i}"), stash.get(f"k{i}")
    answers = stash._answers
    assert answers is not None and len(answers._state.entries) <= 10
    assert stash.get("k1") == "x" * 5000  # too large to keep: read every time
    stash.delete("k0")
    assert not stash.exists("k0")
    stash.clear()
    assert len(stash) == 0 and not stash.exists("k3")
    db.close()


def test_counted_stash_len_is_cached_and_right(tmp_path: Path) -> None:
    db, other = persisty.connect(_url(tmp_path)), persisty.connect(_url(tmp_path))
    stash, theirs = StoreStash(db, "c", counted=True), StoreStash(other, "c", counted=True)
    for i in range(10):
        assert len(stash) == i and len(stash) == i
        theirs.dump(f"k{i}", i)
    assert len(stash) == 10
    other.close()
    db.close()


def test_what_cannot_be_watched_asks_sqlite(tmp_path: Path) -> None:
    memory = persisty.connect("sqlite://")
    assert StoreStash(memory, "t")._answers is None
    memory.close()
    db = persisty.connect(_url(tmp_path))
    assert StoreStash(db, "t", local_cache=0)._answers is None
    db.close()
    plain = tmp_path / "rollback.db"
    sqlite3.connect(str(plain)).execute("CREATE TABLE x (y)").connection.commit()
    assert watch_for(str(plain)) is None  # not WAL: no header to watch
    assert watch_for(str(tmp_path / "absent.db")) is None
    assert not (tmp_path / "absent.db").exists()  # and nothing made


def test_only_a_complete_header_is_trusted(tmp_path: Path) -> None:
    db = persisty.connect(_url(tmp_path))
    StoreStash(db, "t").dump("a", 1)
    watch = watch_for(str(tmp_path / "s.db"))
    assert watch is not None
    stamp = watch.header()
    assert consistent(stamp)
    torn = stamp[:48] + bytes([stamp[48] ^ 1]) + stamp[49:]  # a writer between the copies
    assert not consistent(torn)
    assert not consistent(bytes(96))  # not initialised
    assert not consistent(stamp[:48])
    db.close()


def test_async_stash_sees_other_processes(tmp_path: Path) -> None:
    async def main() -> list[Any]:
        stash = AsyncStoreStash(_url(tmp_path), "t")
        await stash.dump("a", 1)
        seen = []
        for i in range(5):
            for _ in range(2):
                await stash.exists(f"p{i}")
            subprocess.run(
                [
                    sys.executable,
                    "-c",
                    "import sys, persisty; from persisty.stash import StoreStash; "
                    "StoreStash(persisty.connect(sys.argv[1]), 't').dump(sys.argv[2], 1)",
                    _url(tmp_path),
                    f"p{i}",
                ],
                check=True,
            )
            seen.append((await stash.exists(f"p{i}"), await stash.count()))
        await stash.close()
        return seen

    assert asyncio.run(main()) == [(True, i + 2) for i in range(5)]


def test_a_forked_child_watches_for_itself(tmp_path: Path) -> None:
    import multiprocessing

    db = persisty.connect(_url(tmp_path))
    stash = StoreStash(db, "t")
    stash.dump("a", 1)
    _warm(stash, "a", "b")
    proc = multiprocessing.get_context("fork").Process(target=_child_reads, args=(_url(tmp_path),))
    proc.start()
    proc.join(30)
    assert proc.exitcode == 0
    assert stash.exists("b") and len(stash) == 2  # the child's write, seen here
    db.close()


def _child_reads(url: str) -> None:
    stash = StoreStash(persisty.connect(url), "t")
    assert stash.exists("a") and not stash.exists("b")
    stash.dump("b", 2)
    assert stash.exists("b") and len(stash) == 2


def test_any_interleaving_of_writers_and_checkpoints_is_seen(tmp_path: Path) -> None:
    """Hypothesis: any sequence of writes by us, by another persisty database, by a raw
    ``sqlite3`` connection, checkpoints of every mode and reads; every read right."""
    import datetime as dt

    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    url = _url(tmp_path)
    db, other = persisty.connect(url), persisty.connect(url)
    ours, theirs = StoreStash(db, "h"), StoreStash(other, "h")
    ours.dump("x", 0)
    raw = _raw(tmp_path)
    keys = st.sampled_from(["a", "b", "c"])
    step = st.one_of(
        st.tuples(st.sampled_from(["ours", "theirs"]), keys, st.integers(0, 9)),
        st.tuples(st.just("raw-delete"), keys, st.just(0)),
        st.tuples(st.just("raw-expire"), keys, st.just(0)),
        st.tuples(st.just("checkpoint"), st.sampled_from(["PASSIVE", "TRUNCATE"]), st.just(0)),
        st.tuples(st.just("clear"), keys, st.just(0)),
    )

    @settings(
        max_examples=40,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture],
    )
    @given(st.lists(step, max_size=12))
    def run(steps: list[tuple[str, str, int]]) -> None:
        theirs.clear()
        model: dict[str, int] = {}
        past = dt.datetime(2000, 1, 1).isoformat(" ", "microseconds")
        for op, key, value in steps:
            for k in "abc":
                ours.exists(k), ours.get(k)  # fill (and hit) before the change
            len(ours)
            if op in ("ours", "theirs"):
                (ours if op == "ours" else theirs).dump(key, value)
                model[key] = value
            elif op == "raw-delete":
                raw.execute("DELETE FROM stash_h WHERE key = ?", (key,))
                model.pop(key, None)
            elif op == "raw-expire":
                raw.execute("UPDATE stash_h SET expires_at = ? WHERE key = ?", (past, key))
                model.pop(key, None)
            elif op == "checkpoint":
                raw.execute(f"PRAGMA wal_checkpoint({key})").fetchall()
            else:
                theirs.clear()
                model.clear()
            for k in "abc":
                assert ours.exists(k) == (k in model) and ours.get(k) == model.get(k)
            assert len(ours) == len(model)

    try:
        run()
    finally:
        raw.close()
        other.close()
        db.close()


def test_a_writer_thread_sharing_the_stash_is_seen(tmp_path: Path) -> None:
    import threading

    db = persisty.connect(_url(tmp_path))
    stash = StoreStash(db, "t")
    stash.dump("v", 0)
    rounds = 200

    def write() -> None:
        for n in range(1, rounds + 1):
            stash.dump_all([("v", n), (f"n{n}", n)])

    writer = threading.Thread(target=write)
    writer.start()
    last = 0
    while writer.is_alive():
        v = stash.get("v")
        assert v >= last and (v == 0 or stash.exists(f"n{v}"))
        last = v
    writer.join()
    assert stash.get("v") == rounds and len(stash) == rounds + 1
    db.close()


def test_watches_are_bounded_per_process(tmp_path: Path, monkeypatch: Any) -> None:
    from persisty.stash import _walwatch

    db = persisty.connect(_url(tmp_path))
    stash = StoreStash(db, "t")
    monkeypatch.setattr(_walwatch, "MAX_WATCHES", len(_walwatch._WATCHES))
    stash.dump("a", 1)
    for _ in range(4):  # every try refused: asks SQLite, and stays right
        assert stash.get("a") == 1 and len(stash) == 1
    assert stash._answers is not None and stash._answers.entry("a") is None
    db.close()
