"""The snippet from the Core issue, run unchanged on memory:// and file://, sync and async."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from pathlib import Path
from uuid import UUID

import pytest

import persisty.aio
from persisty import Attr, Edit, F, Index, connect, etag, stored
from persisty.errors import Conflict, NotFound, PreconditionFailed, ValidationError


@stored(indexes=[Index("owner", "priority")])
class Note:
    id: UUID  # the key; a uuid4 is generated when absent
    owner: str
    title: str = Attr(max_length=200)
    priority: int = 0
    tags: list[str] = Attr(default_factory=list)
    body: str | None = None
    created_at: datetime = Attr(generated="created")  # set on create
    updated_at: datetime = Attr(generated="updated")  # set on create and on every update


def urls(tmp_path: Path) -> list[str]:
    return ["memory://", f"file://{tmp_path}"]


@pytest.mark.parametrize("kind", ["memory", "file"])
def test_snippet_sync(kind: str, tmp_path: Path) -> None:
    db = connect("memory://" if kind == "memory" else f"file://{tmp_path}")
    notes = db.store(Note)
    n = notes.create(Note(owner="ann", title="Hello"))  # type: ignore[call-arg]
    assert notes.read(str(n.id)) == n and notes.key_of(n) == str(n.id)
    page = notes.search(
        (F.owner == "ann") & (F.priority >= 0), order=[-F.priority, +F.title], limit=20
    )
    assert page.items == [n] and page.next_page_key is None
    assert notes.count(F.title.contains("ell")) == 1
    u = notes.update(dataclasses.replace(n, title="Hi"), if_match=etag(n))
    with pytest.raises(PreconditionFailed):
        notes.update(dataclasses.replace(n, title="Hi"), if_match=etag(n))
    notes.patch(str(n.id), {"priority": 3}, precondition=F.priority < 3)
    with pytest.raises(PreconditionFailed):
        notes.patch(str(n.id), {"priority": 3}, precondition=F.priority < 3)
    a = notes.create(Note(owner="bob", title="x", tags=["x"]))  # type: ignore[call-arg]
    b = Note(owner="cy", title="b")  # type: ignore[call-arg]
    missing_key = "00000000-0000-0000-0000-000000000000"
    assert notes.read_batch([str(a.id), str(u.id), missing_key])[2] is None
    results = notes.edit_batch(
        [
            Edit.create(b),
            Edit.update(dataclasses.replace(a, body="b")),
            Edit.patch(str(a.id), {"priority": -1}),
            Edit.delete(str(u.id)),
        ],
        atomic=True,
    )
    assert all(r.ok for r in results)
    assert notes.update_all(F.owner == "ann", {"priority": 0}) == 0
    assert notes.delete_all(F.priority < 0) == 1
    assert [x.title for x in notes.search_all(F.tags.contains("x"), order=[+F.created_at])] == []
    assert notes.explain(F.owner == "cy", [-F.priority]).residual is persisty.ALL
    with pytest.raises(Conflict):
        notes.create(b)
    with pytest.raises(NotFound):
        notes.delete(str(u.id))
    with pytest.raises(ValidationError):
        notes.create(Note(owner="ann", title="x" * 201))  # type: ignore[call-arg]


@pytest.mark.parametrize("kind", ["memory", "file"])
async def test_snippet_async(kind: str, tmp_path: Path) -> None:
    db = persisty.aio.connect("memory://" if kind == "memory" else f"file://{tmp_path}")
    notes = db.store(Note)
    n = await notes.create(Note(owner="ann", title="Hello"))  # type: ignore[call-arg]
    assert await notes.read(str(n.id)) == n
    page = await notes.search(
        (F.owner == "ann") & (F.priority >= 0), order=[-F.priority, +F.title], limit=20
    )
    assert page.items == [n]
    assert await notes.count(F.title.contains("ell")) == 1
    await notes.update(dataclasses.replace(n, title="Hi"), if_match=etag(n))
    with pytest.raises(PreconditionFailed):
        await notes.update(dataclasses.replace(n, title="Hi"), if_match=etag(n))
    await notes.patch(str(n.id), {"priority": 3}, precondition=F.priority < 3)
    results = await notes.edit_batch([Edit.create(Note(owner="b", title="t", tags=["x"]))])  # type: ignore[call-arg]
    assert results[0].ok
    assert [x.owner async for x in notes.search_all(F.tags.contains("x"))] == ["b"]
    assert await notes.update_all(F.owner == "ann", {"priority": 0}) == 1
    assert await notes.delete_all(F.priority < 0) == 0
    assert (await notes.explain(F.owner == "b")).native is not None


def test_quickstart_example_runs() -> None:
    from examples import quickstart

    lines = quickstart.main("memory://")
    assert any("stale etag was refused" in line for line in lines)
    assert lines[1].startswith("ann's top notes: Note 3 (p3), Note 7 (p3), Note 2 (p2)")
