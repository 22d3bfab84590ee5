"""Typed stored items: ``@stored``, ``Attr``, ``Index``, keys, metadata and etags."""

from persisty.model._attr import ORDERED_KINDS, SCALAR_KINDS, Attr, AttrMeta, to_utc
from persisty.model._meta import (
    Index,
    KeyConfig,
    StoreMeta,
    etag,
    etag_of,
    etags_of,
    key_text,
    meta_of,
    stored,
)
from persisty.model._relations import BelongsTo, HasMany, HasOne, relations_of

__all__ = ["ORDERED_KINDS", "SCALAR_KINDS", "Attr", "AttrMeta", "BelongsTo", "HasMany", "HasOne",
           "Index", "KeyConfig", "StoreMeta", "etag", "etag_of", "etags_of", "key_text",
           "meta_of", "relations_of", "stored", "to_utc"]
