"""What a SQL database offers a service that keeps raw bytes in one column of a store's
table (async; the sync twin ``_sync/sql_access.py`` is generated).

The file store keeps its chunks this way: through the Store contract a ``bytes``
attribute is stored twice (its column and the base64 inside the item's canonical JSON,
which the etag hashes too), while here the column alone holds the bytes and the item
carries the rest. A database declares the protocol by subclassing it; a service checks
for it with ``isinstance`` and falls back to the Store contract elsewhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class AsyncSqlAccess(Protocol):
    """Rows whose one bytes column is written and read apart from the item's document.

    The stores these methods touch are the database's own (``db.store(cls)``), with a
    one-attribute key (a string, or a number matched by its text). The rows bypass the
    store's write path (no hooks, no outbox, no events): they suit a service's internal
    records, never an application's items.

    Example::

        @stored
        class Chunk:
            id: str
            size: int = 0
            data: bytes | None = None

        assert isinstance(sql_db, AsyncSqlAccess)  # the SQL databases declare it
        await sql_db.insert_with_bytes(Chunk, [Chunk(id="c1", size=3)], "data", [b"abc"])
        assert await sql_db.read_bytes(Chunk, ["c1", "c2"], "data") == [b"abc", None]
    """

    async def insert_with_bytes(
        self, cls: type[Any], items: Sequence[Any], attr: str, values: Sequence[bytes]
    ) -> None:
        """Insert ``items`` (new keys) into the table of ``cls``'s store, ``values[i]``
        as the ``attr`` column of ``items[i]`` (the items' own ``attr`` is ignored), with
        one ``executemany`` in one transaction."""
        ...

    async def read_bytes(
        self, cls: type[Any], keys: Sequence[str], attr: str
    ) -> list[bytes | None]:
        """The ``attr`` column of the rows of ``keys`` in the table of ``cls``'s store,
        in the order of ``keys`` (``None`` for a key without a row): one ``SELECT``."""
        ...
