"""What the file store promises when things go wrong: a process killed in the middle of a
put leaves nothing visible (the old version intact) and gc removes what it left; fsck finds
a deleted chunk and a flipped byte; a directory store never touches a path outside its
root; a 200 MB put and read stay within a fixed memory bound."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

import persisty
import persisty.files
from persisty.errors import IntegrityError, ValidationError
from persisty.files import FileChunk, FileChunkData, FileStore
from persisty.files._async.blobs import chunk_id
from persisty.testing._files_data import BAD_KEYS, payload

ROOT = Path(__file__).resolve().parents[2]
MIB = 1024 * 1024

OPEN = """
import persisty, persisty.files
def open_files(kind, where):
    if kind == "chunks":
        return persisty.connect(f"sqlite:///{where}/files.db").files(
            "crash", chunk_size=256 * 1024, batch_bytes=1024 * 1024)
    return persisty.files.connect(f"dir://{where}/dir", name="crash")
"""

CHILD = (
    OPEN
    + """
import sys, pathlib, time
kind, where, key, flag = sys.argv[1:5]
files = open_files(kind, where)
def source():
    piece = bytes(range(256)) * 4096  # 1 MiB
    for i in range(10):
        if i == 3:
            pathlib.Path(flag).write_text("3 MiB sent")
            time.sleep(60)
        yield piece
files.put(key, source())
"""
)


def _open(kind: str, where: Path) -> FileStore:
    namespace: dict[str, object] = {}
    exec(OPEN, namespace)
    files = namespace["open_files"](kind, str(where))  # type: ignore[operator]
    assert isinstance(files, FileStore)
    return files


@pytest.mark.parametrize("kind", ["chunks", "directory"])
@pytest.mark.parametrize("key", ["old", "fresh"])
def test_sigkill_mid_put_leaves_nothing_visible(tmp_path: Path, kind: str, key: str) -> None:
    files = _open(kind, tmp_path)
    old = files.put("old", b"the old version")
    flag = tmp_path / "flag"
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, kind, str(tmp_path), key, str(flag)], cwd=ROOT
    )
    try:
        deadline = time.monotonic() + 60
        while not flag.exists():
            assert child.poll() is None, "the writer died before 3 MiB"
            assert time.monotonic() < deadline
            time.sleep(0.05)
        time.sleep(0.3)  # let the last batch land
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait(30)
    files.close()
    files = _open(kind, tmp_path)
    try:
        assert files.info("old") == old and files.read("old") == b"the old version"
        assert not files.exists("fresh") and files.count() == 1
        report = files.fsck()
        assert report.ok and len(report.orphans) == 1, report
        if kind == "chunks":
            assert len(files.blobs.chunks.search(limit=100).items) >= 3  # type: ignore[attr-defined]
        assert files.gc(older_than=3600).blobs == []  # too young
        assert files.gc(older_than=0).blobs == report.orphans
        assert files.fsck().orphans == []
        if kind == "chunks":
            chunks = files.blobs.chunks.search(limit=100).items  # type: ignore[attr-defined]
            assert [c.blob for c in chunks] == [old.blob]
        else:
            assert list((tmp_path / "dir" / "crash" / "tmp").iterdir()) == []
        assert files.read("old") == b"the old version"
    finally:
        files.close()


@pytest.mark.parametrize("engine", ["sqlite", "memory"])
def test_fsck_finds_a_deleted_chunk_and_a_flipped_byte(tmp_path: Path, engine: str) -> None:
    db = persisty.connect(f"sqlite:///{tmp_path / 'f.db'}" if engine == "sqlite" else "memory://")
    files = db.files("damage", chunk_size=64 * 1024)
    # on SQL a chunk's bytes are its row's data column; elsewhere a FileChunk item's
    chunks: persisty.Store[Any] = db.store(FileChunkData if engine == "sqlite" else FileChunk)
    gone = files.put("gone", payload(200_000))
    flipped = files.put("flipped", payload(200_000, 1))
    intact = files.put("intact", payload(1000, 2))
    chunks.delete(chunk_id(gone.blob, 1))
    data = bytearray(payload(200_000, 1)[2 * 64 * 1024 : 3 * 64 * 1024])
    data[17] ^= 0x01
    chunks.patch(chunk_id(flipped.blob, 2), {"data": bytes(data)})
    report = files.fsck()
    assert report.checked == 3 and not report.ok
    assert {(p.key, p.problem) for p in report.problems} == {
        ("gone", "missing_blob"),
        ("flipped", "digest_mismatch"),
    }
    with pytest.raises(IntegrityError):
        files.read("gone")
    assert files.read("gone", end=64 * 1024) == payload(200_000)[: 64 * 1024]  # chunk 0 only
    assert files.read("intact") == payload(1000, 2) and intact.etag
    db.close()


def test_fsck_on_a_directory_store(tmp_path: Path) -> None:
    files = persisty.files.connect(f"dir://{tmp_path}", name="d")
    try:
        a = files.put("a", payload(5000))
        b = files.put("b", payload(5000, 1))
        blob_a = tmp_path / "d" / "blobs" / a.blob[-2:] / a.blob
        blob_b = tmp_path / "d" / "blobs" / b.blob[-2:] / b.blob
        blob_a.unlink()
        raw = bytearray(blob_b.read_bytes())
        raw[4999] ^= 0xFF
        blob_b.write_bytes(bytes(raw))
        assert {(p.key, p.problem) for p in files.fsck().problems} == {
            ("a", "missing_blob"),
            ("b", "digest_mismatch"),
        }
    finally:
        files.close()


def _snapshot(top: Path, skip: Path) -> dict[str, tuple[int, int]]:
    found = {}
    for dirpath, dirnames, filenames in os.walk(top):
        if Path(dirpath) == skip or skip in Path(dirpath).parents:
            dirnames[:] = []
            continue
        for name in filenames + dirnames:
            p = Path(dirpath) / name
            if p == skip:
                continue
            st = p.lstat()
            found[str(p)] = (st.st_size, st.st_mtime_ns)
    return found


def test_a_directory_store_never_touches_a_path_outside_its_root(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "passwd").write_text("root:x:0:0")
    (tmp_path / "abs").write_text("outside")
    root = tmp_path / "store" / "root"
    files = persisty.files.connect(f"dir://{root}", name="files")
    before = _snapshot(tmp_path, root)
    try:
        for key in [
            *BAD_KEYS,
            "../../etc/passwd",
            "../../../abs",
            "a/../../b",
            "..",
            "." * 3 + "/../x",
            "\u202e/x\x7f",
        ]:
            for attempt in (
                lambda k: files.put(k, b"evil"),
                files.read,
                files.info,
                files.delete,
                lambda k: files.copy(k, "x"),
                lambda k: files.upload_grant(k, size=4, content_type="text/plain"),
            ):
                with pytest.raises(ValidationError) as e:
                    attempt(key)
                assert e.value.code == "invalid_key", key
        files.put("etc/passwd", b"inside")
        files.put("...", b"dots are a name")
        files.copy("etc/passwd", "abs")
        files.delete("abs")
        assert files.read("etc/passwd") == b"inside"
    finally:
        files.close()
    assert _snapshot(tmp_path, root) == before
    assert (tmp_path / "etc" / "passwd").read_text() == "root:x:0:0"


MEASURE = """
import json, resource, sys
import persisty, persisty.files
kind, where = sys.argv[1:3]
if kind == "chunks":
    files = persisty.connect(f"sqlite:///{where}/big.db").files("big")
else:
    files = persisty.files.connect(f"dir://{where}/dir", name="big")
files.put("warm", b"x" * 5_000_000)
files.read("warm")
piece = bytes(range(256)) * 4096
def source():
    for _ in range(200):
        yield piece
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
info = files.put("big", source())
after_put = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
size = sum(len(p) for p in files.open("big"))
after_read = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"size": info.size, "read": size, "base": base, "put": after_put,
                  "after_read": after_read}))
"""


@pytest.mark.timeout(300)
@pytest.mark.parametrize("kind", ["chunks", "directory"])
def test_a_200_mb_put_and_read_stay_within_48_mb(tmp_path: Path, kind: str) -> None:
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(MEASURE), kind, str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=280,
    )
    figures = json.loads(out.stdout)
    assert figures["size"] == figures["read"] == 200 * MIB
    raised_kib = figures["after_read"] - figures["base"]
    print(kind, "peak RSS raised by", raised_kib // 1024, "MiB")
    assert raised_kib < 48 * 1024, figures
