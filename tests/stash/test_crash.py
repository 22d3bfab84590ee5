"""A process killed with SIGKILL in the middle of a write leaves nothing half-visible, and
the next run completes the rest: DirectoryStash.dump/dump_all, a OneShotFactoryStash fill
and MultiProcessStash.populate, each in a real child process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from tests.conformance.test_dynamodb import dynamodb_url
from tests.conftest import MYSQL_URL, POSTGRES_URL, REDIS_URL

import persisty
from persisty.stash import DirectoryStash, MultiProcessStash, OneShotFactoryStash, StoreStash

ENGINES = ["sqlite", POSTGRES_URL, MYSQL_URL, REDIS_URL, "dynamodb"]


def _engine(url: str, tmp_path: Path) -> tuple[str, str]:
    """The URL of an engine and a namespace of this test's own."""
    if url == "sqlite":
        url = f"sqlite:///{tmp_path / 'crash.db'}"
    elif url == "dynamodb":
        url = dynamodb_url()
    return url, "c" + uuid.uuid4().hex[:10]


def _drop(db: persisty.Database) -> None:
    for name in ("drop_tables", "drop"):
        if hasattr(db, name):
            getattr(db, name)()
            return


def _start(code: str, cwd: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=cwd,
        start_new_session=True,
        stderr=subprocess.PIPE,
    )


def _kill_when(
    proc: subprocess.Popen[bytes], ready: Callable[[], bool], timeout: float = 60
) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        assert time.monotonic() < deadline, "the child never got going"
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL


def test_killed_directory_dumps_leave_whole_values(tmp_path: Path) -> None:
    root = tmp_path / "d"
    code = f"""
        from persisty.stash import DirectoryStash
        s = DirectoryStash({str(root)!r})
        big = "x" * 2_000_000
        i = 0
        while True:
            s.dump(f"k{{i % 20}}", {{"i": i, "big": big}})
            s.dump_all([(f"b{{j}}", {{"i": i, "big": big}}) for j in range(5)])
            i += 1
    """
    proc = _start(code, tmp_path)
    _kill_when(
        proc, lambda: len(list(root.glob("b*.dat"))) >= 5 and len(list(root.glob("k*.dat"))) >= 8
    )
    stash = DirectoryStash(root)  # finishes a dump_all whose journal was written
    batch = {k: v["i"] for k, v in stash.items() if k.startswith("b")}
    assert len(batch) == 5 and len(set(batch.values())) == 1  # one whole batch, never a mix
    for key in list(stash.keys()):  # iterating a stash gives (key, value) pairs
        assert stash.get(key)["big"] == "x" * 2_000_000  # every visible value is whole
    assert not list(root.glob(".journal-*"))
    for i in range(20):  # the next run completes the rest
        stash.dump(f"k{i}", {"i": -1, "big": ""})
    assert len(list(stash.keys("k"))) == 20


@pytest.mark.parametrize("engine", ENGINES)
def test_killed_one_shot_fill_is_redone(engine: str, tmp_path: Path) -> None:
    url, ns = _engine(engine, tmp_path)
    marker = tmp_path / "started"
    code = f"""
        import time
        from pathlib import Path
        import persisty
        from persisty.stash import OneShotFactoryStash, StoreStash
        def work():
            for i in range(1000):
                if i == 30:
                    Path({str(marker)!r}).touch()
                time.sleep(0.01)
                yield str(i), i
        db = persisty.connect({url!r}, namespace={ns!r})
        OneShotFactoryStash(StoreStash(db, "fill"), work, batch_size=10).get("0")
    """
    proc = _start(code, tmp_path)
    _kill_when(proc, marker.exists)
    db = persisty.connect(url, namespace=ns)
    delegate = StoreStash(db, "fill")
    assert 0 < len(delegate) < 1000  # batches were written, the fill was not complete
    fill = OneShotFactoryStash(delegate, lambda: ((str(i), i) for i in range(100)))
    assert not fill.has_data
    assert fill.get("99") == 99  # redone, not served half
    assert fill.has_data and len(fill) >= 100
    delegate.clear()
    _drop(db)
    db.close()


@pytest.mark.parametrize("engine", ENGINES)
def test_killed_populate_resumes_with_the_missing_chunks(engine: str, tmp_path: Path) -> None:
    url, ns = _engine(engine, tmp_path)
    log = tmp_path / "computed"
    (tmp_path / "work.py").write_text(
        textwrap.dedent(f"""
        import os, time
        def square(key):
            with open({str(log)!r}, "a") as f:
                f.write(key + "\\n")
            time.sleep(0.02)
            return int(key) ** 2
    """)
    )
    code = f"""
        import sys
        sys.path.insert(0, {str(tmp_path)!r})
        from work import square
        import persisty
        from persisty.stash import MultiProcessStash, StoreStash
        db = persisty.connect({url!r}, namespace={ns!r})
        MultiProcessStash(StoreStash(db, "pop")).populate(
            square, [str(i) for i in range(200)], workers=2, chunk_size=10)
    """
    proc = _start(code, tmp_path)
    db = persisty.connect(url, namespace=ns)
    delegate = StoreStash(db, "pop")
    _kill_when(proc, lambda: log.exists() and len(log.read_text().split()) >= 60)
    present = set(delegate.keys())
    assert 0 < len(present) < 200
    for key in present:  # whole chunks: a chunk of 10 is all there or all missing
        start = int(key) // 10 * 10
        assert {str(i) for i in range(start, start + 10)} <= present
        assert delegate.get(key) == int(key) ** 2
    log.unlink()
    sys.path.insert(0, str(tmp_path))
    sys.modules.pop("work", None)  # this test's work.py, not an earlier parameter's
    try:
        from work import square  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(tmp_path))
    stash = MultiProcessStash(delegate)
    computed = stash.populate(square, [str(i) for i in range(200)], workers=2, chunk_size=10)
    assert computed == 200 - len(present)
    assert set(log.read_text().split()) == {str(i) for i in range(200)} - present
    assert len(stash) == 200 and stash.get("199") == 199**2
    delegate.clear()
    _drop(db)
    db.close()
