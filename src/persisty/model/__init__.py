"""Typed stored items: ``@stored``, ``Attr``, ``Index``, keys, metadata and etags."""

from persisty.model._attr import ORDERED_KINDS, SCALAR_KINDS, Attr, AttrMeta, FileRef, to_utc
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
from persisty.model._paths import ItemPath, is_path, parse_path
from persisty.model._relations import (
    BelongsTo,
    HasMany,
    HasOne,
    Reference,
    references_to,
    relations_of,
)

__all__ = [
    "ORDERED_KINDS",
    "SCALAR_KINDS",
    "Attr",
    "AttrMeta",
    "BelongsTo",
    "FileRef",
    "HasMany",
    "HasOne",
    "Index",
    "ItemPath",
    "KeyConfig",
    "Reference",
    "StoreMeta",
    "etag",
    "etag_of",
    "etags_of",
    "is_path",
    "key_text",
    "meta_of",
    "parse_path",
    "references_to",
    "relations_of",
    "stored",
    "to_utc",
]
