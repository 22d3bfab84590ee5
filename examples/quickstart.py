"""The first five minutes with persisty: declare an item, store it, query it.

    .venv/bin/python examples/quickstart.py [URL]      # default: memory://

The same code runs on every backend: pass file:///tmp/notes, sqlite:///notes.db,
postgresql://…, mysql://…, redis://… or dynamodb://… as URL.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable
from datetime import datetime
from uuid import UUID, uuid4

from persisty import Attr, Edit, F, Index, Store, connect, etag, stored
from persisty.errors import PreconditionFailed


@stored(indexes=[Index("owner", "priority")])
class Note:
    """A note someone wrote."""

    id: UUID = Attr(default_factory=uuid4)  # the key
    owner: str
    title: str = Attr(max_length=200)
    priority: int = 0
    tags: list[str] = Attr(default_factory=list)
    body: str | None = None
    # a default for the type checker; the store sets them
    created_at: datetime = Attr(generated="created", default=None)  # set on create
    updated_at: datetime = Attr(generated="updated", default=None)  # set on every write


def main(url: str = "memory://") -> list[str]:
    """Run the tour against ``url``; return the lines it printed."""
    out: list[str] = []

    def say(text: str) -> None:
        out.append(text)
        print(text)

    with connect(url, namespace="quickstart") as db:
        return _tour(db.store(Note), say, out)


def _tour(notes: Store[Note], say: Callable[[str], None], out: list[str]) -> list[str]:
    notes.delete_all(None)

    hello = notes.create(Note(owner="ann", title="Hello", tags=["greeting"]))
    say(f"created {notes.key_of(hello)} at {hello.created_at:%H:%M:%S}")
    notes.edit_batch(
        [Edit.create(Note(owner="ann", title=f"Note {i}", priority=i % 4)) for i in range(10)]
    )
    notes.create(Note(owner="bob", title="Bob's", priority=2))

    page = notes.search(
        (F.owner == "ann") & (F.priority >= 2), order=[-F.priority, +F.title], limit=3
    )
    say("ann's top notes: " + ", ".join(f"{n.title} (p{n.priority})" for n in page.items))
    more = notes.search(
        (F.owner == "ann") & (F.priority >= 2),
        order=[-F.priority, +F.title],
        limit=3,
        page_key=page.next_page_key,
    )
    say("next page: " + ", ".join(n.title for n in more.items))
    say(f"titles containing 'ote': {notes.count(F.title.contains('ote'))}")

    updated = notes.update(dataclasses.replace(hello, title="Hi"), if_match=etag(hello))
    try:
        notes.update(dataclasses.replace(hello, title="lost update"), if_match=etag(hello))
    except PreconditionFailed:
        say("a stale etag was refused: no lost update")
    notes.patch(str(updated.id), {"priority": 3}, precondition=F.priority < 3)
    patched = notes.read(str(updated.id))
    assert patched is not None
    say(f"patched: {patched.title!r} now has priority {patched.priority}")
    say(f"bumped {notes.update_all(F.owner == 'bob', {'priority': 0})} of bob's notes")
    say(f"plan: {notes.explain(F.owner == 'ann', [-F.priority]).detail}")
    return out


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "memory://")
