"""How one store lives in Redis (key names, index members, the write-script arguments) and
how a filter and an order are planned onto its sorted sets. Plain sync code shared by the
async and the sync store.

Keys of a store (``base`` is ``<prefix>:{<namespace>:<store>}``; the braces keep a store's
keys in one cluster slot):

``base:i:<key>``
    the item: ``<etag>|<msgspec JSON>``, expiring natively when the store has a TTL
``base:x:~keys``
    every key, as a lexicographic sorted set ordered by the typed key values
``base:x:<index name>``
    one lexicographic sorted set per declared index: the indexed values, then the key
``base:u:<index name>``
    a hash per unique index: encoded values -> key
``base:s``
    the item's etag and the index entries written for it (to remove them later, also
    after the item itself has expired)
``base:e``
    keys by expiry time (stores with a TTL), cleaned up before every read of an index
``base:q:<attr>``
    counters of ``generated="sequence"`` attributes
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from persisty.backends.redis import _encoding as enc
from persisty.backends.redis._planning import (
    KEYS_INDEX,
    Access,
    IndexDef,
    Planner,
    after_filter,
)
from persisty.errors import Conflict, NotFound, PersistyError, PreconditionFailed
from persisty.model import SCALAR_KINDS, StoreMeta, etag_of
from persisty.store import Insert, Key, Remove, WriteOp

__all__ = ["Access", "IndexDef", "Layout", "Upsert", "after_filter", "as_bytes", "pack"]


class Upsert(Insert):
    """Create or replace (``store.put`` with nothing of a stored item kept): the commit
    script writes the item whether or not its key is taken, in the one call."""

    __slots__ = ()


def pack(parts: Iterable[bytes]) -> bytes:
    """Length-prefixed concatenation (the Lua scripts' list format)."""
    return b"".join(str(len(p)).encode() + b":" + p for p in parts)


class Layout(Planner):
    """Key names, index members and write-script arguments of one store (its query
    planning is :class:`Planner`'s)."""

    def __init__(self, meta: StoreMeta, base: str) -> None:
        super().__init__()
        self.meta = meta
        self.base = base
        self.b = base.encode()
        self.item_prefix = self.b + b":i:"
        key_attrs = meta.key.attrs
        self.keyset = IndexDef(
            KEYS_INDEX, key_attrs, 0, False, self.b + b":x:" + KEYS_INDEX.encode(), b""
        )
        indexes = [self.keyset]
        skipped = []
        for ix in meta.indexes:
            name = ix.index_name(meta.name)
            if any(meta.by_name[a].kind not in SCALAR_KINDS for a in ix.attrs):
                skipped.append(name)
                continue
            indexes.append(
                IndexDef(
                    name,
                    ix.attrs + key_attrs,
                    len(ix.attrs),
                    ix.unique,
                    self.b + b":x:" + name.encode(),
                    self.b + b":u:" + name.encode(),
                )
            )
        self.indexes: tuple[IndexDef, ...] = tuple(indexes)
        self.skipped = tuple(skipped)
        self.unique = tuple(ix for ix in self.indexes if ix.unique)
        self._index_names = [ix.name.encode() for ix in self.indexes]
        self._shadow_names = [b"%d:%s" % (len(n), n) for n in self._index_names]
        count = str(len(self.indexes)).encode()
        self._shadow_count = b"%d:%s" % (len(count), count)
        self.version_key = self.b + b":v"
        self.signature = (
            "1|"
            + ";".join(
                f"{ix.name}={','.join(ix.attrs)}{'!' if ix.unique else ''}" for ix in self.indexes
            )
        ).encode()
        self.shadow = self.b + b":s"
        self.expiry = self.b + b":e"
        self.expires = meta.expires
        self.header = [
            self.b,
            b"0",
            b"0" if meta.expires is None else b"1",
            str(len(self.indexes)).encode(),
            str(len(self.unique)).encode(),
            *(ix.name.encode() for ix in self.indexes),
            *(ix.name.encode() for ix in self.unique),
        ]

    # ---- names and values -------------------------------------------------------------

    def raw_key(self, key: Key) -> bytes:
        """The key string of typed key values, as bytes."""
        return self.meta.key_string(key).encode()

    def item_key(self, raw: bytes) -> bytes:
        """The Redis key of the item whose key string is ``raw``."""
        return self.item_prefix + raw

    def value(self, item: Any, tag: str) -> bytes:
        """What is stored for an item: its etag, ``|``, its JSON."""
        return tag.encode() + b"|" + self.meta.encode(item)

    def load(self, data: Any) -> tuple[Any, str] | None:
        """The item and etag from a stored value (``None`` for a missing key)."""
        if not isinstance(data, bytes):
            return None
        tag, _, body = data.partition(b"|")
        # an empty etag: a patch wrote the document, whose content hash it is
        return self.meta.decode(body), tag.decode() if tag else etag_of(body)

    def fill_args(self, raws: Sequence[bytes], values: Sequence[Any]) -> list[bytes]:
        """The ``FILL`` script's arguments for the items ``raws`` whose stored values (as
        read) lack the etag a patch left out."""
        args = [self.b]
        meta = self.meta
        for raw, data in zip(raws, values, strict=True):
            if isinstance(data, bytes) and data.startswith(b"|"):
                # etag(item), also of a document that holds more than the model has
                tag = etag_of(meta.encode(meta.decode(data[1:])))
                args += (raw, data[1:], tag.encode())
        return args

    def member(self, ix: IndexDef, item: Any, raw: bytes) -> bytes:
        """The sorted-set member of ``item`` in ``ix``."""
        return b"".join(enc.encode(getattr(item, a)) for a in ix.attrs) + raw

    def unique_field(self, ix: IndexDef, item: Any) -> bytes:
        """The unique-hash field of ``item`` in ``ix``; empty when a value is None."""
        values = [getattr(item, a) for a in ix.attrs[: ix.own]]
        if any(v is None for v in values):
            return b""
        return b"".join(enc.encode(v) for v in values)

    def raw_of(self, ix: IndexDef, member: bytes) -> bytes:
        """The key string at the end of a member."""
        return member[enc.prefix_length(member, len(ix.attrs)) :]

    # ---- writes -------------------------------------------------------------------------

    def commit_args(self, ops: Sequence[WriteOp], atomic: bool) -> list[bytes]:
        """The arguments of the commit script for ``ops``."""
        args = list(self.header)
        args[1] = b"1" if atomic else b"0"
        for op in ops:
            raw = self.raw_key(op.key)
            expected = (op.expected or "").encode() if not isinstance(op, Insert) else b""
            if isinstance(op, Remove):
                args += [b"D", raw, expected]
                continue
            item = op.item
            encode = enc.encode
            key = op.key
            tail = (encode(key[0]) if len(key) == 1 else b"".join([encode(v) for v in key])) + raw
            members = [
                b"".join([encode(getattr(item, a)) for a in ix.attrs[: ix.own]]) + tail
                for ix in self.indexes
            ]
            fields = [self.unique_field(ix, item) for ix in self.unique] if self.unique else []
            tag = op.etag.encode()
            doc = (
                op.doc
                if isinstance(op, Insert) and op.doc is not None
                else (self.meta.encode(item))
            )
            args += [
                (b"P" if type(op) is Upsert else b"I") if isinstance(op, Insert) else b"R",
                raw,
                expected,
                tag + b"|" + doc,
                self.shadow_entry(tag, members, fields),
                *members,
                *fields,
            ]
            if self.expires is not None:  # PXAT: Redis deletes the item at its expiry
                at = getattr(item, self.expires)
                args.append(b"0" if at is None else b"%d" % max(1, int(at.timestamp() * 1000)))
        return args

    def shadow_entry(self, tag: bytes, members: list[bytes], fields: list[bytes]) -> bytes:
        """The shadow record of an item: etag, (index, member) pairs, (unique index, field)
        pairs, packed as the scripts' list format."""
        out = [b"%d:" % len(tag), tag, self._shadow_count]
        for prefix, m in zip(self._shadow_names, members, strict=True):
            out += (prefix, b"%d:" % len(m), m)
        if not self.unique:
            out.append(b"1:0")
            return b"".join(out)
        taken = [(ix.name.encode(), f) for ix, f in zip(self.unique, fields, strict=True) if f]
        count = str(len(taken)).encode()
        out.append(b"%d:%s" % (len(count), count))
        for name, f in taken:
            out.append(b"%d:%s%d:%s" % (len(name), name, len(f), f))
        return b"".join(out)

    def errors(self, ops: Sequence[WriteOp], codes: Sequence[bytes]) -> list[PersistyError | None]:
        """The script's result codes as persisty errors."""
        meta = self.meta
        result: list[PersistyError | None] = []
        for op, raw in zip(ops, codes, strict=False):
            code = raw.decode() if isinstance(raw, bytes) else str(raw)
            key = meta.key_string(op.key)
            if code in ("ok", ""):
                result.append(None)
            elif code == "exists":
                result.append(
                    Conflict(f"{meta.name} {key!r} already exists", field=meta.key.attrs[0])
                )
            elif code == "missing":
                result.append(NotFound(f"no {meta.name} with key {key!r}"))
            elif code == "unknown":  # etags a patch left out, filled in and lost again
                result.append(Conflict("too many concurrent changes; try again"))
            elif code == "etag":
                result.append(PreconditionFailed("the item has changed (etag does not match)"))
            elif code.startswith("unique:"):
                ix = self.unique[int(code[7:])]
                attrs = ix.attrs[: ix.own]
                values = tuple(getattr(getattr(op, "item", None), a, None) for a in attrs)
                result.append(
                    Conflict(
                        f"{', '.join(attrs)} must be unique: {values!r} is taken", field=attrs[0]
                    )
                )
            else:
                result.append(PersistyError(f"unexpected result from Redis: {code}"))
        result += [None] * (len(ops) - len(result))
        return result


def as_bytes(values: Any) -> list[bytes]:
    """redis-py's reply (typed loosely) as the list of bytes it is."""
    return list(values)
