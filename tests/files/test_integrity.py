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
import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest
from tests.files._engines import ENGINES, NAMESPACE, dynamodb_url, endpoint, s3_url

import persisty
import persisty.files
from persisty.errors import IntegrityError, ValidationError
from persisty.files import ChunkBlobs, FileChunk, FileChunkData, FileStore
from persisty.files._async.blobs import chunk_id
from persisty.files._sync.s3 import S3Blobs
from persisty.query import F
from persisty.testing._files_data import BAD_KEYS, payload

ROOT = Path(__file__).resolve().parents[2]
MIB = 1024 * 1024

OPEN = """
import persisty, persisty.files
def open_files(kind, where, url, name):
    if kind == "directory":
        return persisty.files.connect(f"dir://{where}/dir", name=name)
    if kind == "s3":
        return persisty.files.connect(url, name=name, catalog=f"sqlite:///{where}/catalog.db")
    db = persisty.connect(url or f"sqlite:///{where}/files.db", namespace="filestest")
    return persisty.files.chunked_files(
        db, name, chunk_size=256 * 1024, batch_bytes=1024 * 1024, closing=(db,))
"""

CHILD = (
    OPEN
    + """
import sys, pathlib, time
kind, where, url, name, key, flag, at = sys.argv[1:8]
files = open_files(kind, where, url, name)
def source():
    piece = bytes(range(256)) * 4096  # 1 MiB
    for i in range(10):
        if i == int(at):
            pathlib.Path(flag).write_text(f"{at} MiB sent")
            time.sleep(60)
        yield piece
files.put(key, source())
"""
)

# (kind, the MiB sent before the kill): chunks on every SQL engine, a directory, S3 before
# its first request (an 8 MiB put is one PUT) and with a multipart upload open
CRASHES = [
    ("sqlite", 3),
    ("postgres", 3),
    ("mariadb", 3),
    ("directory", 3),
    ("s3", 3),
    ("s3", 9),
]


def _open(kind: str, where: Path, url: str, name: str) -> FileStore:
    namespace: dict[str, object] = {}
    exec(OPEN, namespace)
    open_files = namespace["open_files"]
    assert callable(open_files)
    files = open_files(kind, str(where), url, name)
    assert isinstance(files, FileStore)
    return files


def _open_multipart_uploads(files: FileStore) -> list[str]:
    assert isinstance(files.blobs, S3Blobs)
    s3 = boto3.client("s3", endpoint_url=endpoint(), region_name="us-east-1")
    answer = s3.list_multipart_uploads(Bucket=files.blobs.bucket, Prefix=files.blobs.base)
    return [u["Key"] for u in answer.get("Uploads", [])]


def _chunk_blobs(files: FileStore) -> list[str]:
    """The blob of each chunk of this file store's blobs."""
    assert isinstance(files.blobs, ChunkBlobs)
    blobs = [b.id for b in files.blobs.blobs.search_all(F.store == files.name)]
    return sorted(c.blob for c in files.blobs.chunks.search_all(F.blob.in_(blobs)))


@pytest.mark.parametrize(("kind", "at"), CRASHES, ids=[f"{k}-{m}MiB" for k, m in CRASHES])
@pytest.mark.parametrize("key", ["old", "fresh"])
def test_sigkill_mid_put_leaves_nothing_visible(
    tmp_path: Path, kind: str, at: int, key: str
) -> None:
    url = {"postgres": ENGINES["postgres"], "mariadb": ENGINES["mariadb"]}.get(kind, "")
    url = s3_url("crash") if kind == "s3" else url
    name = "crash" + uuid.uuid4().hex[:8]
    files = _open(kind, tmp_path, url, name)
    old = files.put("old", b"the old version")
    flag = tmp_path / "flag"
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, kind, str(tmp_path), url, name, key, str(flag), str(at)],
        cwd=ROOT,
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
    files = _open(kind, tmp_path, url, name)
    try:
        assert files.info("old") == old and files.read("old") == b"the old version"
        assert not files.exists("fresh") and files.count() == 1
        report = files.fsck()
        # S3 has nothing of a put before its first request (3 MiB of a 10 MiB put)
        orphans = 0 if (kind, at) == ("s3", 3) else 1
        assert report.ok and len(report.orphans) == orphans, report
        if kind in ("sqlite", "postgres", "mariadb"):
            assert _chunk_blobs(files).count(report.orphans[0]) >= 3
        if kind == "s3":
            assert len(_open_multipart_uploads(files)) == orphans
        assert files.gc(older_than=3600).blobs == []  # too young
        assert files.gc(older_than=0).blobs == report.orphans
        assert files.fsck().orphans == []
        if kind in ("sqlite", "postgres", "mariadb"):
            assert _chunk_blobs(files) == [old.blob]
        elif kind == "directory":
            assert list((tmp_path / "dir" / name / "tmp").iterdir()) == []
        else:
            assert _open_multipart_uploads(files) == []
        assert files.read("old") == b"the old version"
        files.delete("old")
    finally:
        files.close()


@pytest.mark.parametrize("engine", [*ENGINES, "dynamodb"])
def test_fsck_finds_a_deleted_chunk_and_a_flipped_byte(engine: str) -> None:
    db = persisty.connect(
        dynamodb_url() if engine == "dynamodb" else ENGINES[engine], namespace=NAMESPACE
    )
    files = db.files("damage" + uuid.uuid4().hex[:8], chunk_size=64 * 1024)
    # on SQL a chunk's bytes are its row's data column; elsewhere a FileChunk item's
    sql = engine in ("sqlite", "postgres", "mariadb")
    chunks: persisty.Store[Any] = db.store(FileChunkData if sql else FileChunk)
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
    for key in ("gone", "flipped", "intact"):
        files.delete(key)
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
