"""persisty: one typed model and one Store interface over every engine.

Example::

    from persisty import stored, Attr, F, connect

    @stored
    class Note:
        id: UUID
        owner: str
        title: str = Attr(max_length=200)

    notes = connect("memory://").store(Note)
    notes.create(Note(owner="ann", title="Hello"))
    notes.search(F.owner == "ann").items
"""

from persisty import aio
from persisty._connect import connect
from persisty._version import __version__
from persisty.errors import (
    Conflict,
    Forbidden,
    NotFound,
    PersistyError,
    PreconditionFailed,
    ValidationError,
)
from persisty.model import Attr, FileRef, Index, KeyConfig, StoreMeta, etag, meta_of, stored
from persisty.query import ALL, NONE, F, Filter, Order
from persisty.store import Clock, Database, Edit, EditResult, Explain, Increment, Page, Store

__all__ = [
    "ALL",
    "NONE",
    "Attr",
    "Clock",
    "Conflict",
    "Database",
    "Edit",
    "EditResult",
    "Explain",
    "F",
    "FileRef",
    "Filter",
    "Forbidden",
    "Increment",
    "Index",
    "KeyConfig",
    "NotFound",
    "Order",
    "Page",
    "PersistyError",
    "PreconditionFailed",
    "Store",
    "StoreMeta",
    "ValidationError",
    "__version__",
    "aio",
    "connect",
    "etag",
    "meta_of",
    "stored",
]
