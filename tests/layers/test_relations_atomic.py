"""Delete cascades over stores of one database are one atomic commit: a related write that
fails leaves every store as it was."""

from __future__ import annotations

from typing import Any

import pytest

import persisty
from persisty.errors import Conflict
from persisty.layers import BelongsTo, HasMany, related
from persisty.model import stored
from persisty.store import Edit


@stored
class AtomicShelf:
    id: str
    volumes = HasMany("AtomicVolume", "shelf_id", on_delete="cascade")
    labels = HasMany("AtomicLabel", "shelf_id", on_delete="cascade")


@stored
class AtomicVolume:
    id: str
    shelf_id: str | None = None
    shelf = BelongsTo(AtomicShelf, "shelf_id")


@stored
class AtomicLabel:
    id: str
    shelf_id: str | None = None
    shelf = BelongsTo(AtomicShelf, "shelf_id")


@pytest.mark.parametrize("failing", ["volume", "label"])
@pytest.mark.parametrize("url", ["memory://", "sqlite://"])
def test_a_failing_related_write_changes_no_store(url: str, failing: str, monkeypatch: Any) -> None:
    db = persisty.connect(url)
    shelves = related(db.store(AtomicShelf), db)
    shelves.create(AtomicShelf(id="s"))
    db.store(AtomicVolume).create(AtomicVolume(id="v1", shelf_id="s"))
    labels = db.store(AtomicLabel)
    labels.create(AtomicLabel(id="l1", shelf_id="s"))
    volumes = db.store(AtomicVolume)
    target, key = (volumes, "v1") if failing == "volume" else (labels, "l1")
    real = target.search_all

    def vanish(*args: Any, **kwargs: Any) -> Any:  # a concurrent delete after the plan read
        found = list(real(*args, **kwargs))
        if target.read(key) is not None:
            target.delete(key)
        return iter(found)

    monkeypatch.setattr(target, "search_all", vanish)
    with pytest.raises(Conflict):
        shelves.delete("s")
    monkeypatch.undo()
    assert shelves.read("s") is not None
    # whichever store's write was to come first is untouched
    assert volumes.count() + labels.count() == 1
    if failing == "volume":
        volumes.create(AtomicVolume(id="v1", shelf_id="s"))
    else:
        labels.create(AtomicLabel(id="l1", shelf_id="s"))
    shelves.delete("s")
    assert db.store(AtomicVolume).count() == 0 and labels.count() == 0
    assert shelves.count() == 0


def test_cascade_in_an_atomic_batch_is_one_commit() -> None:
    db = persisty.connect("memory://")
    shelves = related(db.store(AtomicShelf), db)
    shelves.edit_batch([Edit.create(AtomicShelf(id="a")), Edit.create(AtomicShelf(id="b"))])
    db.store(AtomicVolume).create(AtomicVolume(id="v", shelf_id="a"))
    results = shelves.edit_batch([Edit.delete("a"), Edit.delete("nobody")], atomic=True)
    assert [r.code for r in results] == ["aborted", "not_found"]
    assert db.store(AtomicVolume).read("v") is not None
    results = shelves.edit_batch([Edit.delete("a"), Edit.delete("b")], atomic=True)
    assert all(r.ok for r in results)
    assert db.store(AtomicVolume).count() == 0
