"""Splitting an item into its parent row and shard rows, and putting it together again
(pure logic, shared by the async and the sync sharding layer)."""

from __future__ import annotations

import copy
import threading
from collections.abc import Mapping
from typing import Any

import msgspec

from persisty.errors import (
    Conflict,
    Forbidden,
    IntegrityError,
    NotFound,
    PersistyError,
    PreconditionFailed,
    Unavailable,
    ValidationError,
)
from persisty.layers.sharded._model import SHARD_TAGS, ShardPath
from persisty.model import StoreMeta, etag, meta_of
from persisty.query import Filter, compile_filter, validate_filter
from persisty.store import Edit, EditKind, EditResult

_EPOCH = "1970-01-01T00:00:00Z"

Children = dict[str, list[Any]]
"""The rows of each shard path of one item (one row, none, or one per list element)."""


Fetched = dict[str, dict[str, Any]]
"""Shard rows read, by path then row key (``None`` for a key read and not found)."""


class Stale(Exception):
    """A shard row did not match its parent's pointer (a write in between, or damage)."""

    def __init__(self, path: str) -> None:
        self.path = path


_ERRORS: dict[str, type[PersistyError]] = {
    c.code: c
    for c in (
        Conflict,
        Forbidden,
        IntegrityError,
        NotFound,
        PreconditionFailed,
        Unavailable,
        ValidationError,
    )
}

SEEN_MAX = 10_000
"""How many items' pointers a sharded store remembers."""


class ShardRows:
    """The row logic of a sharded store: ``meta`` is the item's model, ``inner`` the store of
    the parent rows, ``shards`` the shard paths (deepest first), ``_roots`` their top-level
    attributes."""

    meta: StoreMeta
    inner: Any
    stores: dict[str, Any]
    shards: list[ShardPath]
    _roots: set[str]
    _seen: dict[str, tuple[str, dict[str, str]]]
    _seen_lock: threading.Lock
    _lengths: dict[str, int]

    # ---- splitting and putting together ------------------------------------------------

    def _checked(self, item: Any) -> Any:
        """``item`` validated against the outer model (generated values left to ``inner``)."""
        meta = self.meta
        if isinstance(item, Mapping):
            item = meta.from_builtins(item)
        elif not isinstance(item, meta.cls):
            raise ValidationError(f"expected a {meta.cls.__name__}, got {type(item).__name__}")
        doc = msgspec.to_builtins(item)
        for a in meta.attrs:
            if a.generated in ("created", "updated", "sequence") and doc.get(a.name) is None:
                doc[a.name] = 0 if a.generated == "sequence" else _EPOCH
        meta.from_builtins(doc)  # raises ValidationError naming the field
        return item

    def _split(self, item: Any) -> tuple[Any, Children]:
        """The parent row and the shard rows of an (outer) item."""
        key = self.meta.key_of(item)
        doc = msgspec.json.decode(msgspec.json.encode(item))  # a copy, in stored form
        children: Children = {}
        tags: dict[str, str] = {}
        for p in self.shards:  # deepest first, so an outer shard's value lacks the inner
            container: Any = doc
            for s in p.segments[:-1]:
                container = container.get(s) if isinstance(container, dict) else None
            value = container.pop(p.segments[-1], None) if isinstance(container, dict) else None
            row_meta = meta_of(p.cls)
            if p.each:
                rows = [
                    row_meta.from_builtins({"parent": key, "index": i, "value": v})
                    for i, v in enumerate(value or [])
                ]
                if value is not None:
                    tags[p.text] = f"n={len(rows)}"
                for i, r in enumerate(rows):
                    tags[f"{p.text}#{i}"] = etag(r)
            else:
                rows = (
                    []
                    if value is None
                    else [row_meta.from_builtins({"parent": key, "value": value})]
                )
                if rows:
                    tags[p.text] = etag(rows[0])
            children[p.text] = rows
        for root in self._roots:
            if root in doc and not any(p.segments == (root,) for p in self.shards):
                continue  # nested shards only: the rest of it stays in the parent row
            doc[root] = None
        doc[SHARD_TAGS] = tags
        return self.inner.meta.from_builtins(doc), children

    def _child_keys(self, row: Any) -> dict[str, list[tuple[str, str]]]:
        """(tag name, row key) of every shard row ``row`` points to, per path."""
        return self._keys_for(self.inner.meta.key_of(row), getattr(row, SHARD_TAGS) or {})

    def _keys_for(self, key: str, tags: Mapping[str, str]) -> dict[str, list[tuple[str, str]]]:
        """(tag name, row key) of every shard row of the parent ``key`` whose pointers are
        ``tags``, per path."""
        found: dict[str, list[tuple[str, str]]] = {}
        for p in self.shards:
            m = meta_of(p.cls)
            if p.each:
                marker = tags.get(p.text)
                n = int(marker[2:]) if marker and marker.startswith("n=") else 0
                found[p.text] = [(f"{p.text}#{i}", m.key_string((key, i))) for i in range(n)]
            else:
                found[p.text] = [(p.text, m.key_string((key,)))] if p.text in tags else []
        return found

    def _assemble(self, row: Any, rows: Mapping[str, Mapping[str, Any]]) -> Any:
        """The outer item of a parent row and its shard rows (by path, then row key);
        ``Stale`` naming the path when one does not match its pointer."""
        tags: dict[str, str] = getattr(row, SHARD_TAGS) or {}
        doc = msgspec.json.decode(msgspec.json.encode(row))  # a copy: rows stay as stored
        doc.pop(SHARD_TAGS, None)
        wanted = self._child_keys(row)
        for p in reversed(self.shards):  # outermost first
            got = rows.get(p.text, {})
            values = []
            for tag_name, k in wanted[p.text]:
                child = got.get(k)
                if child is None or etag(child) != tags.get(tag_name):
                    raise Stale(p.text)
                values.append(copy.deepcopy(child.value))
            if p.each:
                value: Any = values if p.text in tags else None
            else:
                value = values[0] if values else None
            container: Any = doc
            for s in p.segments[:-1]:
                container = container.get(s) if isinstance(container, dict) else None
            if not isinstance(container, dict):
                if value is None:
                    continue
                raise Stale(p.text)
            container[p.segments[-1]] = value
        return self.meta.from_builtins(doc)

    def _guess(self, key: str) -> dict[str, list[str]]:
        """The shard row keys the parent ``key`` is likely to point to, to read with the
        parent: those of its pointers as last seen here, else every single shard and as
        many list rows as the list had the last time one was read."""
        seen = self._seen.get(key)
        if seen is not None:
            return {
                path: [k for _, k in pairs] for path, pairs in self._keys_for(key, seen[1]).items()
            }
        out: dict[str, list[str]] = {}
        for p in self.shards:
            m = meta_of(p.cls)
            if p.each:
                out[p.text] = [m.key_string((key, i)) for i in range(self._lengths.get(p.text, 0))]
            else:
                out[p.text] = [m.key_string((key,))]
        return out

    def _remember(self, row: Any) -> None:
        """Keep the pointers of a parent row as read or written (a bounded memory): they
        say which rows to read with it next time, and which to delete without a read."""
        key = self.inner.meta.key_of(row)
        tags: dict[str, str] = dict(getattr(row, SHARD_TAGS) or {})
        for p in self.shards:
            marker = tags.get(p.text)
            if p.each and marker and marker.startswith("n="):
                self._lengths[p.text] = int(marker[2:])
        with self._seen_lock:
            self._seen.pop(key, None)
            self._seen[key] = (etag(row), tags)
            while len(self._seen) > SEEN_MAX:
                self._seen.pop(next(iter(self._seen)))

    def _forget(self, key: str) -> None:
        with self._seen_lock:
            self._seen.pop(key, None)

    def _by_key(self, children: Children) -> dict[str, dict[str, Any]]:
        return {
            path: {meta_of(type(r)).key_of(r): r for r in rows} for path, rows in children.items()
        }

    # ---- the writes of a commit (no reads) ---------------------------------------------

    def _writes(
        self, old: Any, new: Any, children: Children, kind: EditKind
    ) -> list[tuple[Any, Edit]]:
        """The commit of writing parent row ``new`` (over ``old``) with ``children``: only
        the shard rows that changed, and deletes of those that are gone."""
        tags_old: dict[str, str] = {} if old is None else (getattr(old, SHARD_TAGS) or {})
        tags_new: dict[str, str] = getattr(new, SHARD_TAGS)
        if kind is EditKind.DELETE:
            return self._deletes(self.inner.meta.key_of(old), etag(old), tags_old)
        parent = Edit.create(new) if old is None else Edit.update(new, if_match=etag(old))
        writes: list[tuple[Any, Edit]] = [(self.inner, parent)]
        keep: set[tuple[str, str]] = set()  # (path, row key): the stores share row keys
        for p in self.shards:
            store = self.stores[p.text]
            for i, r in enumerate(children.get(p.text, [])):
                name = f"{p.text}#{i}" if p.each else p.text
                keep.add((p.text, store.meta.key_of(r)))
                held = tags_old.get(name)
                if old is None:
                    writes.append((store, Edit.create(r)))  # new: no read before the write
                elif held is not None and held != tags_new.get(name):
                    # the row the parent points to, as it pointed: no read before the write
                    writes.append((store, Edit.update(r, if_match=held)))
                elif held != tags_new.get(name):
                    writes.append((store, Edit.put(r)))
        if old is not None:
            for path, pairs in self._child_keys(old).items():
                for _, k in pairs:
                    if (path, k) not in keep:
                        writes.append((self.stores[path], Edit.delete(k)))
        return writes

    def _deletes(self, key: str, row_etag: str, tags: Mapping[str, str]) -> list[tuple[Any, Edit]]:
        """The commit of deleting the parent row ``key`` (if its etag is still ``row_etag``)
        and every shard row its pointers ``tags`` name."""
        writes: list[tuple[Any, Edit]] = [(self.inner, Edit.delete(key, if_match=row_etag))]
        for path, pairs in self._keys_for(key, tags).items():
            writes += [(self.stores[path], Edit.delete(k)) for _, k in pairs]
        return writes

    def _check(self, item: Any, if_match: str | None, precondition: Filter | None) -> None:
        if if_match is not None and if_match != etag(item):
            raise PreconditionFailed("the item has changed (etag does not match)")
        if precondition is not None and not compile_filter(
            validate_filter(precondition, self.meta), self.meta
        )(item):
            raise PreconditionFailed("the precondition does not hold")


def shard_error(r: EditResult[Any]) -> PersistyError:
    """The error of a failed result of a sharded store's commit."""
    cls = _ERRORS.get(r.code or "", PersistyError)
    return cls(r.message or r.code or "error", field=r.field)
