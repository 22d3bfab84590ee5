"""``AsyncKeyValue``: key/value pairs in one namespace of any store (sync twin generated)."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

from persisty import Increment
from persisty._retry import attempts, lost_too_often
from persisty.errors import Conflict, NotFound, PreconditionFailed, Unavailable, ValidationError
from persisty.kv._async._base import AsyncService, put_item, put_items, retryable
from persisty.kv._async._counted import AsyncPairCount
from persisty.kv._codec import JsonCodec
from persisty.kv._logic import check_key, glob_prefix
from persisty.kv._models import IndexedKVPair, KVPair
from persisty.model import etag
from persisty.query import F, Filter
from persisty.store import Edit

_MISSING: Any = object()
_INT64 = 2**63


class AsyncKeyValue(AsyncService):
    """Key/value pairs (rstore's names) in one namespace of any persisty store.

    Any string is a key; a stored ``None`` is a value. ``keys=`` encrypts values with
    AES-256-GCM bound to the namespace and the key; ``frozen=True`` refuses every write.

    Example::

        kv = AsyncKeyValue("sqlite:///data.db", namespace="app")
        await kv.set("greeting", {"text": "hi"}, ttl=60)
        await kv.get("greeting")            # {'text': 'hi'}
        await kv.incr("hits")               # 1, atomic on the engine
        await kv.find("greet*")             # [('greeting', {'text': 'hi'})]
    """

    model: type[Any] = KVPair
    retries = 0
    """How many times a write of ``incr`` was tried again after losing a race (zero where
    the engine increments natively)."""

    def __init__(
        self,
        db_or_url: Any,
        namespace: str = "default",
        *,
        codec: Any = "json",
        keys: Any = None,
        frozen: bool = False,
    ) -> None:
        super().__init__(db_or_url, namespace, codec=codec, keys=keys, frozen=frozen)
        self._counter: AsyncPairCount | None = None
        if hasattr(self.db, "sql_url"):  # an index there costs a B-tree, not every write
            self.model = IndexedKVPair

    @property
    def counter(self) -> AsyncPairCount | None:
        """The namespace's key count (SQL: ``len`` is a point read), else ``None`` (the
        engine counts natively: Redis ``ZLEXCOUNT``, a DynamoDB query, memory)."""
        if self._counter is None and self.model is IndexedKVPair:
            self._counter = AsyncPairCount(self.db, self.ns, self.store, self.raw)
        return self._counter

    @property
    def _native_ints(self) -> bool:
        return self.key_ring is None and type(self.codec) is JsonCodec

    def _item(self, key: str, value: Any, ttl: Any = None) -> KVPair:
        check_key(key)
        expires = None
        if ttl is not None:
            if isinstance(ttl, int | float) and not isinstance(ttl, bool):
                ttl = dt.timedelta(seconds=ttl)
            if not isinstance(ttl, dt.timedelta) or ttl.total_seconds() <= 0:
                raise ValidationError(
                    "ttl must be a positive number of seconds or a timedelta", field="ttl"
                )
            clock = getattr(self.db, "clock", None)  # the database's (injectable) clock
            expires = (clock() if callable(clock) else dt.datetime.now(dt.UTC)) + ttl
        if self._native_ints and type(value) is int and -_INT64 <= value < _INT64:
            return self.model(ns=self.ns, key="/" + key, num=value, expires=expires)  # type: ignore[no-any-return]
        return self.model(ns=self.ns, key="/" + key, value=self._encode(value), expires=expires)  # type: ignore[no-any-return]

    def _value(self, pair: KVPair) -> Any:
        return pair.num if pair.value is None else self._decode(pair.value)

    def _key(self, key: str) -> str:
        return self.raw.meta.key_string((self.ns, "/" + check_key(key)))

    @staticmethod
    def _live(pair: KVPair | None) -> KVPair | None:
        # expired pairs are never returned by the store (the contract's expiry)
        return pair

    async def _read(self, key: str) -> KVPair | None:
        if not await self._ready():
            return None
        counter = self.counter
        if counter is not None and self.key_ring is None:  # SQL: the point read of (ns, key)
            return await counter.fast.read("/" + check_key(key))
        return self._live(await self.store.read(self._key(key)))

    # ---- reads ---------------------------------------------------------------------------

    async def get(self, key: str, default: Any = None) -> Any:
        """The value of ``key``, else ``default``."""
        pair = await self._read(key)
        return default if pair is None else self._value(pair)

    async def has(self, key: str) -> bool:
        """Whether ``key`` has a value (a stored ``None`` counts)."""
        return await self._read(key) is not None

    async def etag(self, key: str) -> str | None:
        """The etag of ``key``'s pair (for ``set(…, if_match=)``), else ``None``."""
        pair = await self._read(key)
        return None if pair is None else etag(pair)

    async def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        """``{key: value}`` for the keys of ``keys`` that have a value (one batch read)."""
        keys = list(keys)
        if not keys or not await self._ready():
            return {}
        found = await self.store.read_batch([self._key(k) for k in keys])
        live = [(k, self._live(p)) for k, p in zip(keys, found, strict=True)]
        return {k: self._value(p) for k, p in live if p is not None}

    async def count(self) -> int:
        """How many keys the namespace has (``len(kv)``): on SQL one point read of the
        namespace's count of pairs without expiry plus an index range of the live pairs
        with one; counted by the engine elsewhere."""
        if not await self._ready():
            return 0
        if self.counter is not None:
            return await self.counter.length()
        return await self.store.count(self.mine)

    async def _pairs(self, f: Filter, prefix_len: int = 0) -> list[KVPair]:
        if not await self._ready():
            return []
        return [
            p async for p in self.store.search_all(f, order=[+F.key]) if self._live(p) is not None
        ]

    async def keys(self) -> list[str]:
        """Every key of the namespace, in code-point order."""
        return [p.key[1:] for p in await self._pairs(self.mine)]

    async def items(self, prefix: str | None = None) -> list[tuple[str, Any]]:
        """``[(key, value)]`` in key order, only keys starting with ``prefix`` if given
        (the prefix is a range on the engine)."""
        f = self.mine
        if prefix is not None:
            f = f & F.key.startswith("/" + check_key(prefix, "prefix"))
        return [(p.key[1:], self._value(p)) for p in await self._pairs(f)]

    async def find(self, pattern: str | None = None) -> list[tuple[str, Any]]:
        """``[(key, value)]`` whose key matches the glob ``pattern`` (``*`` any run, ``?``
        one character) as a whole; its literal prefix is a range on the engine. Without a
        pattern: every pair."""
        if pattern is None:
            return await self.items()
        prefix, rx = glob_prefix(pattern)
        f = self.mine & F.key.startswith("/" + prefix)
        if rx is None and prefix == pattern:  # no wildcard at all: one key
            pair = await self._read(pattern)
            return [] if pair is None else [(pattern, self._value(pair))]
        return [
            (p.key[1:], self._value(p))
            for p in await self._pairs(f)
            if rx is None or rx.fullmatch(p.key[1:])
        ]

    # ---- writes ----------------------------------------------------------------------------

    async def set(
        self, key: str, value: Any, *, ttl: Any = None, if_match: str | None = None
    ) -> str:
        """Store ``value`` under ``key`` (expiring after ``ttl`` seconds or a timedelta);
        with ``if_match`` only if the pair still has that etag (``PreconditionFailed``).
        Returns the new etag."""
        self._writable()
        await self._ready()
        item = self._item(key, value, ttl)
        if self.counter is not None:
            return etag(await self.counter.set(item, if_match))
        stored = await put_item(self.store, item, if_match=if_match)
        return etag(stored)

    async def set_many(self, mapping: Mapping[str, Any]) -> None:
        """Store every pair of ``mapping`` at once: all or none."""
        self._writable()
        await self._ready()
        items = [self._item(k, v) for k, v in dict(mapping).items()]
        if self.counter is not None:
            await self.counter.set_many(items)
            return
        await put_items(self.store, items, self.atomic_limit)

    async def add(self, key: str, value: Any, *, ttl: Any = None) -> bool:
        """Store ``value`` only if ``key`` has none; ``True`` if it was stored."""
        self._writable()
        await self._ready()
        item = self._item(key, value, ttl)
        if self.counter is not None:
            return await self.counter.add(item)
        for _ in attempts():
            try:
                await self.store.create(item)
                return True
            except Conflict:
                old = await self.store.read(self._key(key))
                if old is None:
                    continue
                if self._live(old) is not None:
                    return False
                # an expired pair the engine has not removed yet
                with contextlib.suppress(NotFound, PreconditionFailed):
                    await self.store.delete(self._key(key), if_match=etag(old))
        raise lost_too_often()

    async def incr(self, key: str, by: int = 1) -> int:
        """Add ``by`` to the integer at ``key`` (0 when absent or expired) atomically;
        return it. Under the JSON codec without encryption this is one native increment
        on the engine (``Increment``: on SQL one transaction holding the row, never a
        retried race); otherwise a conditional write, tried again on a lost race."""
        self._writable()
        await self._ready()
        if not isinstance(by, int) or isinstance(by, bool):
            raise ValidationError("by must be an int", field="by")
        k = self._key(key)
        for _ in attempts():
            if self._native_ints:
                try:
                    new = await self.store.patch(
                        k, {"num": Increment(by)}, precondition=F.value.exists(False)
                    )
                    return int(new.num)
                except NotFound:
                    pass  # absent (or expired): created below
                except PreconditionFailed:
                    self._not_int(await self.store.read(k))  # raises unless deleted meanwhile
                    self.retries += 1
                    continue
                except (Conflict, Unavailable) as e:
                    if not retryable(e):
                        raise
                    # the engine rolled a collision back: nothing was written, so trying
                    # again loses no increment
                    self.retries += 1
                    continue
            else:
                old = await self.store.read(k)
                if old is not None:
                    current = self._not_int(old)
                    # the pair keeps its expiry, as a native increment does (and its count)
                    new = dataclasses.replace(self._item(key, current + by), expires=old.expires)
                    try:
                        stored = await self.store.update(new, if_match=etag(old))
                        return int(self._value(stored))
                    except (PreconditionFailed, NotFound):
                        self.retries += 1
                        continue
                    except (Conflict, Unavailable) as e:
                        if not retryable(e):
                            raise
                        self.retries += 1
                        continue
            if await self.add(key, by):
                return by
            # another writer created the pair meanwhile: the next pass adds to it (a second
            # step of this increment, not a lost race: nothing was written twice)
        raise lost_too_often()

    def _not_int(self, pair: KVPair | None) -> int:
        value = None if pair is None else self._value(pair)
        if pair is not None and (type(value) is not int):
            raise ValidationError(f"{pair.key[1:]!r} does not hold an int", field="key")
        return value or 0

    async def pop(self, key: str, default: Any = _MISSING) -> Any:
        """Remove ``key`` and return its value; ``default`` if absent (``KeyError``
        without one)."""
        self._writable()
        if self.counter is not None and await self._ready():
            gone = await self.counter.delete([self._key(key)])
            if gone:
                return self._value(gone[0])
            if default is _MISSING:
                raise KeyError(key)
            return default
        for _ in attempts():
            pair = await self._read(key)
            if pair is None:
                if default is _MISSING:
                    raise KeyError(key)
                return default
            try:
                await self.store.delete(self._key(key), if_match=etag(pair))
            except (PreconditionFailed, NotFound):
                continue
            return self._value(pair)
        raise lost_too_often()

    async def delete(self, *keys: str) -> int:
        """Delete ``keys`` (missing ones are ignored); return how many were deleted."""
        self._writable()
        if not keys or not await self._ready():
            return 0
        names = list(dict.fromkeys(self._key(k) for k in keys))
        if self.counter is not None:
            return len(await self.counter.delete(names))
        results = await self.store.edit_batch([Edit.delete(k) for k in names], atomic=False)
        return sum(1 for r in results if r.ok)

    async def discard(self) -> int:
        """Delete every pair of this namespace (and of no other); return how many."""
        self._writable()
        if not await self._ready():
            return 0
        if self.counter is not None:
            return await self.counter.discard()
        return await self.store.delete_all(self.mine)
