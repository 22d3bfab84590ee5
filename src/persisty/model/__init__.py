"""Typed stored items: ``@stored``, ``Attr``, ``Index``, keys, metadata and etags."""

from persisty.model._attr import (
    ORDERED_KINDS,
    SCALAR_KINDS,
    Attr,
    AttrMeta,
    AttrOptions,
    FileRef,
    strip_optional,
    to_utc,
)
from persisty.model._etag import etag, etag_of, etags_of
from persisty.model._keys import Index, KeyConfig, key_text
from persisty.model._meta import StoreMeta, meta_of
from persisty.model._paths import ItemPath, is_path, parse_path
from persisty.model._relations import (
    BelongsTo,
    HasMany,
    HasOne,
    Reference,
    Relation,
    references_to,
    relations_of,
)
from persisty.model._stored import stored

__all__ = [
    "ORDERED_KINDS",
    "SCALAR_KINDS",
    "Attr",
    "AttrMeta",
    "AttrOptions",
    "BelongsTo",
    "FileRef",
    "HasMany",
    "HasOne",
    "Index",
    "ItemPath",
    "KeyConfig",
    "Reference",
    "Relation",
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
    "strip_optional",
    "to_utc",
]
