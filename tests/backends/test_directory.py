"""Directory backend specifics: the files, crash recovery, cross-process atomicity."""

from __future__ import annotations

import dataclasses
import json
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import msgspec
import pytest

import persisty
from persisty import F, etag
from persisty.backends.directory import _files
from persisty.backends.directory._files import _JournalEntry
from persisty.store import Edit
from persisty.testing.models import Counter, Item


def test_one_json_document_per_item(tmp_path: Path) -> None:
    db = persisty.connect(f"file://{tmp_path}")
    items = db.store(Item)
    a = items.create(Item(owner="ann", title="a"))
    items.create(Item(owner="bob", title="b"))
    files = sorted((tmp_path / "_default" / "item").glob("*.json"))
    assert len(files) == 2
    docs = [json.loads(f.read_text()) for f in files]
    mine = next(d for d in docs if d["key"] == str(a.id))
    assert mine["etag"] == etag(a) and mine["item"]["title"] == "a"
    assert not list((tmp_path / "_default" / "item").glob(".tmp-*"))


def test_data_survives_reopening(tmp_path: Path) -> None:
    a = persisty.connect(f"file://{tmp_path}").store(Item).create(Item(owner="o", title="t"))
    again = persisty.connect(f"file://{tmp_path}").store(Item)
    assert again.read(str(a.id)) == a
    assert again.count(F.owner == "o") == 1


def test_page_keys_survive_reopening(tmp_path: Path) -> None:
    items = persisty.connect(f"file://{tmp_path}").store(Item)
    for i in range(5):
        items.create(Item(owner="o", title=f"t{i}"))
    key = items.search(order=["title"], limit=2).next_page_key
    again = persisty.connect(f"file://{tmp_path}").store(Item)
    assert [i.title for i in again.search(order=["title"], limit=2, page_key=key).items] == [
        "t2",
        "t3",
    ]


def test_interrupted_batch_is_replayed(tmp_path: Path) -> None:
    db = persisty.connect(f"file://{tmp_path}")
    items = db.store(Item)
    a = items.create(Item(owner="ann", title="a"))
    table = items.table  # type: ignore[attr-defined]
    new = dataclasses.replace(a, title="changed")
    doc = msgspec.json.encode(
        {"key": str(a.id), "etag": etag(new), "item": msgspec.json.decode(table.meta.encode(new))}
    )
    # the journal was written, then the process died before applying it
    (table.path / ".journal").write_bytes(
        msgspec.json.encode([_JournalEntry(table._file((a.id,)).name, doc)])
    )
    again = persisty.connect(f"file://{tmp_path}").store(Item)
    assert again.read(str(a.id)).title == "changed"  # type: ignore[union-attr]
    assert not (table.path / ".journal").exists()


def test_torn_journal_is_discarded(tmp_path: Path) -> None:
    items = persisty.connect(f"file://{tmp_path}").store(Item)
    a = items.create(Item(owner="ann", title="a"))
    path = items.table.path  # type: ignore[attr-defined]
    (path / ".journal").write_bytes(b'[{"name": "x.json", "cont')
    again = persisty.connect(f"file://{tmp_path}").store(Item)
    assert again.read(str(a.id)) == a
    assert not (path / ".journal").exists()


_INCREMENT = """
import dataclasses, sys
import persisty
from persisty import etag
from persisty.errors import PreconditionFailed
from persisty.testing.models import Counter
counters = persisty.connect("file://" + sys.argv[1]).store(Counter)
for _ in range(int(sys.argv[2])):
    while True:
        c = counters.read("c")
        try:
            counters.update(dataclasses.replace(c, value=c.value + 1), if_match=etag(c))
            break
        except PreconditionFailed:
            continue
"""


def test_conditional_writes_are_atomic_across_processes(tmp_path: Path) -> None:
    persisty.connect(f"file://{tmp_path}").store(Counter).create(Counter(id="c"))
    procs = [
        subprocess.Popen([sys.executable, "-c", _INCREMENT, str(tmp_path), "40"]) for _ in range(3)
    ]
    for p in procs:
        assert p.wait(120) == 0
    final = persisty.connect(f"file://{tmp_path}").store(Counter).read("c")
    assert final is not None and final.value == 120


# ---- readers see a batch whole or not at all (issue 11, item 1) ----------------------------

_BATCH_WRITER = """
import os, signal, sys
import persisty
from persisty.backends.directory import _files
from persisty.store import Edit
from persisty.testing.models import Item

root, batches, kill_after = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
items = persisty.connect("file://" + root).store(Item)
if kill_after:
    # die (SIGKILL: no cleanup) after the journal and kill_after item files are written
    real = _files._write_atomic
    count = [0]
    def dying(path, content):
        real(path, content)
        count[0] += 1
        if count[0] > kill_after:
            os.kill(os.getpid(), signal.SIGKILL)
    _files._write_atomic = dying
print("ready", flush=True)
for b in range(batches):
    items.edit_batch([Edit.create(Item(owner="w", title=f"{b}-{i}")) for i in range(300)])
"""

_READER = """
import sys, time
import persisty
from persisty import F
from persisty.testing.models import Item

items = persisty.connect("file://" + sys.argv[1]).store(Item)
seen = set()
deadline = time.monotonic() + float(sys.argv[2])
while time.monotonic() < deadline:
    seen.add(items.count(F.owner == "w"))
    seen.add(len(items.search(F.owner == "w", limit=1000).items))
print(" ".join(map(str, sorted(seen))), flush=True)
"""


def _writer(root: Path, batches: int, kill_after: int = 0) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, "-c", _BATCH_WRITER, str(root), str(batches), str(kill_after)],
        stdout=subprocess.PIPE,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.startswith(b"ready"), line
    return proc


def test_a_reader_in_another_process_never_sees_half_a_batch(tmp_path: Path) -> None:
    persisty.connect(f"file://{tmp_path}").store(Item).create(Item(owner="o", title="t"))
    reader = subprocess.Popen(
        [sys.executable, "-c", _READER, str(tmp_path), "6"], stdout=subprocess.PIPE
    )
    writer = _writer(tmp_path, 3)
    assert writer.wait(300) == 0
    out, _ = reader.communicate(timeout=300)
    assert reader.returncode == 0, out
    seen = {int(x) for x in out.split()}
    assert seen <= {0, 300, 600, 900}, sorted(seen)
    assert persisty.connect(f"file://{tmp_path}").store(Item).count(F.owner == "w") == 900


def test_an_open_store_replays_the_batch_of_a_killed_writer(tmp_path: Path) -> None:
    items = persisty.connect(f"file://{tmp_path}").store(Item)
    assert items.count() == 0  # open (and read) before the writer dies
    writer = _writer(tmp_path, 1, kill_after=75)  # the journal, then 75 of 300 items
    assert writer.wait(300) == -signal.SIGKILL
    path = items.table.path  # type: ignore[attr-defined]
    assert (path / ".journal").exists()
    assert len(list(path.glob("*.json"))) == 75  # torn on disk ...
    assert items.count(F.owner == "w") == 300  # ... whole for the reader, already open
    assert not (path / ".journal").exists()
    assert len(items.search(F.owner == "w", limit=1000).items) == 300


def test_reads_create_nothing_and_drop_leaves_nothing(tmp_path: Path) -> None:
    root = tmp_path / "db"
    db = persisty.connect(f"file://{root}", namespace="ns")
    items = db.store(Item)
    assert items.count() == 0 and items.read(str(uuid.uuid4())) is None
    assert not root.exists()
    items.create(Item(owner="o", title="t"))
    assert db.footprint(Item)
    db.drop()
    assert not (root / "ns").exists() and db.footprint() == []
    assert items.count() == 0


def test_a_reader_that_finds_no_store_reads_nothing_a_writer_adds_meanwhile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cause of a flaky torn-batch test: a reader that found no store directory read
    it anyway, without a lock, and so saw the files of a batch another process was
    applying meanwhile (a loaded machine descheduled it between the two steps). Here the
    writer's batch lands exactly in that gap."""
    reader = persisty.connect(f"file://{tmp_path}").store(Item)
    writer = persisty.connect(f"file://{tmp_path}").store(Item)
    table = reader.table  # type: ignore[attr-defined]
    real_open = open

    def racing_open(path: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return real_open(path, *args, **kwargs)
        except FileNotFoundError:
            if Path(path) == table.path / ".lock":  # the gap: the batch lands now
                writer.edit_batch([Edit.create(Item(owner="w", title=f"t{i}")) for i in range(5)])
            raise

    monkeypatch.setattr(_files, "open", racing_open, raising=False)
    assert reader.count(F.owner == "w") == 0  # read before the batch: none of it
    monkeypatch.undo()
    assert reader.count(F.owner == "w") == 5
    assert len(reader.search(F.owner == "w").items) == 5
