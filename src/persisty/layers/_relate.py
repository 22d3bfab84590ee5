"""``related(store, stores)``: the relations layer for a sync or an async store (sync-only
entry point; the layers are in ``_async/relations.py`` and its generated twin)."""

from __future__ import annotations

from typing import Any

from persisty.layers._async.relations import AsyncRelatedStore
from persisty.layers._sync.relations import RelatedStore
from persisty.store import AsyncStore, Store


def related(store: Any, stores: Any) -> Any:
    """Wrap ``store`` (sync or async) so its declared relations load in batches and deletes
    keep references intact. ``stores`` gives the related classes' stores: the database, a
    mapping from class to store, or a callable ``cls -> store``.

    Example::

        authors = related(db.store(Author), db)
        books = related(db.store(Book), db)
        books.load(books.search().items, "author")
        authors.delete("a1")     # blocks, cascades or sets null, as declared
    """
    if isinstance(store, AsyncStore):
        return AsyncRelatedStore(store, stores)
    if isinstance(store, Store):
        return RelatedStore(store, stores)
    raise TypeError(f"related() wraps a Store, not {type(store).__name__}")
