"""Typed stored items: ``@stored``, ``Attr``, ``Index``, keys, metadata and etags."""

from persisty.model._attr import Attr, AttrMeta, FileRef
from persisty.model._meta import Index, KeyConfig, StoreMeta, etag, meta_of, stored
from persisty.model._relations import BelongsTo, HasMany, HasOne, relations_of

__all__ = ["Attr", "AttrMeta", "BelongsTo", "FileRef", "HasMany", "HasOne", "Index", "KeyConfig",
           "StoreMeta", "etag", "meta_of", "relations_of", "stored"]
