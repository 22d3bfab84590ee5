"""The asyncio API: ``persisty.aio.connect(url)`` gives stores whose methods are awaitable.

Example::

    import persisty.aio
    db = persisty.aio.connect("memory://")
    notes = db.store(Note)
    n = await notes.create(Note(owner="ann", title="Hello"))
    async for note in notes.search_all(F.owner == "ann"):
        ...
"""

from persisty._connect import connect_async as connect
from persisty.store import AsyncDatabase, AsyncStore

__all__ = ["AsyncDatabase", "AsyncStore", "connect"]
