"""Typed stored items: ``@stored``, ``Attr``, ``Index``, keys, metadata and etags."""

from persisty.model._attr import Attr, AttrMeta
from persisty.model._meta import Index, KeyConfig, StoreMeta, etag, meta_of, stored
from persisty.model._relations import (
    BelongsTo,
    HasMany,
    HasOne,
    Reference,
    references_to,
    relations_of,
)

__all__ = ["Attr", "AttrMeta", "BelongsTo", "HasMany", "HasOne", "Index", "KeyConfig",
           "Reference", "StoreMeta", "etag", "meta_of", "references_to", "relations_of",
           "stored"]
