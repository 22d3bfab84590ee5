"""The asyncio API: ``persisty.aio.connect(url)`` gives stores whose methods are awaitable.

Example::

    import persisty.aio

    async with persisty.aio.connect("sqlite:///notes.db") as db:   # closed on the way out
        notes = db.store(Note)
        n = await notes.create(Note(owner="ann", title="Hello"))
        async for note in notes.search_all(F.owner == "ann"):
            print(note.title)
"""

from persisty._connect import connect_async as connect
from persisty.store import AsyncDatabase, AsyncStore

__all__ = ["AsyncDatabase", "AsyncStore", "connect"]
