"""Typed stored items: ``@stored``, ``Attr``, ``Index``, keys, metadata and etags."""

from persisty.model._attr import Attr, AttrMeta
from persisty.model._meta import Index, KeyConfig, StoreMeta, etag, meta_of, stored

__all__ = ["Attr", "AttrMeta", "Index", "KeyConfig", "StoreMeta", "etag", "meta_of", "stored"]
