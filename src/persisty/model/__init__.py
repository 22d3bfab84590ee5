"""Typed stored items: ``@stored``, ``Attr``, ``Index``, keys, metadata and etags."""

from persisty.model._attr import Attr, AttrMeta, FileRef
from persisty.model._meta import Index, KeyConfig, StoreMeta, etag, meta_of, stored
from persisty.model._paths import ItemPath, is_path, parse_path
from persisty.model._relations import (
    BelongsTo,
    HasMany,
    HasOne,
    Reference,
    references_to,
    relations_of,
)

__all__ = ["Attr", "AttrMeta", "BelongsTo", "FileRef", "HasMany", "HasOne", "Index", "ItemPath",
           "KeyConfig", "Reference", "StoreMeta", "etag", "is_path", "meta_of", "parse_path",
           "references_to", "relations_of", "stored"]
