"""Directory backend specifics: the files, crash recovery, cross-process atomicity."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import msgspec

import persisty
from persisty import F, etag
from persisty.backends.directory._files import _JournalEntry
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
        "t2", "t3"]


def test_interrupted_batch_is_replayed(tmp_path: Path) -> None:
    db = persisty.connect(f"file://{tmp_path}")
    items = db.store(Item)
    a = items.create(Item(owner="ann", title="a"))
    table = items.table  # type: ignore[attr-defined]
    new = dataclasses.replace(a, title="changed")
    doc = msgspec.json.encode({"key": str(a.id), "etag": etag(new),
                               "item": msgspec.json.decode(table.meta.encode(new))})
    # the journal was written, then the process died before applying it
    (table.path / ".journal").write_bytes(msgspec.json.encode(
        [_JournalEntry(table._file((a.id,)).name, doc)]))
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
    procs = [subprocess.Popen([sys.executable, "-c", _INCREMENT, str(tmp_path), "40"])
             for _ in range(3)]
    for p in procs:
        assert p.wait(120) == 0
    final = persisty.connect(f"file://{tmp_path}").store(Counter).read("c")
    assert final is not None and final.value == 120
