"""The relations layer: declared relations loaded in batches and kept intact on delete
(async source, generated sync twin, and :func:`related`)."""

from __future__ import annotations

from typing import Any

from persisty.layers._dispatch import is_async
from persisty.layers.related._async import AsyncRelatedStore
from persisty.layers.related._sync import RelatedStore

__all__ = ["AsyncRelatedStore", "RelatedStore", "related"]


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
    if is_async(store, "related"):
        return AsyncRelatedStore(store, stores)
    return RelatedStore(store, stores)
