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
from pathlib import Path

from persisty.stash import DirectoryStash, MultiProcessStash, OneShotFactoryStash, StoreStash


def _start(code: str, cwd: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=cwd,
        start_new_session=True,
        stderr=subprocess.PIPE,
    )


def _kill_when(proc: subprocess.Popen[bytes], ready: callable, timeout: float = 60) -> None:
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


def test_killed_one_shot_fill_is_redone(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fill.db'}"
    marker = tmp_path / "started"
    code = f"""
        import time
        from pathlib import Path
        from persisty.stash import OneShotFactoryStash, StoreStash
        def work():
            for i in range(1000):
                if i == 30:
                    Path({str(marker)!r}).touch()
                time.sleep(0.01)
                yield str(i), i
        OneShotFactoryStash(StoreStash({url!r}, "fill"), work, batch_size=10).get("0")
    """
    proc = _start(code, tmp_path)
    _kill_when(proc, marker.exists)
    delegate = StoreStash(url, "fill")
    assert 0 < len(delegate) < 1000  # batches were written, the fill was not complete
    fill = OneShotFactoryStash(delegate, lambda: ((str(i), i) for i in range(100)))
    assert not fill.has_data
    assert fill.get("99") == 99  # redone, not served half
    assert fill.has_data and len(fill) >= 100
    delegate.close()


def test_killed_populate_resumes_with_the_missing_chunks(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'pop.db'}"
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
        from persisty.stash import MultiProcessStash, StoreStash
        MultiProcessStash(StoreStash({url!r}, "pop")).populate(
            square, [str(i) for i in range(200)], workers=2, chunk_size=10)
    """
    proc = _start(code, tmp_path)
    delegate = StoreStash(url, "pop")
    _kill_when(proc, lambda: log.exists() and len(log.read_text().split()) >= 60)
    present = set(delegate.keys())
    assert 0 < len(present) < 200
    for key in present:  # whole chunks: a chunk of 10 is all there or all missing
        start = int(key) // 10 * 10
        assert {str(i) for i in range(start, start + 10)} <= present
        assert delegate.get(key) == int(key) ** 2
    log.unlink()
    sys.path.insert(0, str(tmp_path))
    try:
        from work import square  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(tmp_path))
    stash = MultiProcessStash(delegate)
    computed = stash.populate(square, [str(i) for i in range(200)], workers=2, chunk_size=10)
    assert computed == 200 - len(present)
    assert set(log.read_text().split()) == {str(i) for i in range(200)} - present
    assert len(stash) == 200 and stash.get("199") == 199**2
    delegate.close()
