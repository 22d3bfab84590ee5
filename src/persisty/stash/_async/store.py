"""Stashes over persisty stores (async): ``AsyncStoreStash`` (a key/value stash in any
database) and ``AsyncStoreStash.of(store)`` (any store as a stash of its items).

The sync twin ``persisty/stash/_sync/store.py`` is generated from this file by
``scripts/generate_sync.py``; edit this file, never the twin.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from persisty.errors import Conflict, NotFound, PreconditionFailed, ValidationError
from persisty.model import etag
from persisty.query import F
from persisty.stash._answers import PRESENT, answers_for
from persisty.stash._async.base import AsyncStash
from persisty.stash._async.counted import AsyncCounter
from persisty.stash._codec import MISSING, Codec, check_key
from persisty.stash._open import (
    database_secret,
    entry_type,
    indexes_cheaply,
    open_async_database,
    sequence_type,
)
from persisty.store import AsyncDatabase, AsyncStore, Edit

PAGE = 500
ATOMIC_LIMIT = 100


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


async def _put_all(store: AsyncStore[Any], items: list[Any]) -> None:
    """Upsert ``items`` in one atomic batch (in atomic batches of ``ATOMIC_LIMIT``, the
    last written last, on an engine that bounds its transactions: DynamoDB's is 100)."""
    if not items:
        return
    try:
        await _put_batch(store, items)
    except ValidationError:
        if len(items) <= ATOMIC_LIMIT:
            raise
        for i in range(0, len(items), ATOMIC_LIMIT):
            await _put_batch(store, items[i : i + ATOMIC_LIMIT])


async def _put_batch(store: AsyncStore[Any], items: list[Any]) -> None:
    results = await store.edit_batch([Edit.put(i) for i in items], atomic=True)
    failed = [r for r in results if not r.ok and r.code != "aborted"]
    if failed:
        raise Conflict(
            f"the batch was not written: {failed[0].code} "
            f"{getattr(failed[0], 'message', '')}".strip()
        )


class AsyncStoreStash(AsyncStash):
    """A key/value stash over one store in any persisty database: the stash ``name`` is the
    store ``stash_<name>`` (key, encoded value, expiry). ``exists`` is one point read,
    ``count`` one native count, ``keys`` a paged native search (``prefix`` pushed down).

    Values are msgspec JSON (``codec="json"``, the default) or ``"msgpack"``;
    ``codec="pickle"`` signs each blob with HMAC-SHA256 under ``secret`` (default: the
    database's secret) and refuses a blob whose tag does not verify before unpickling.
    ``ttl`` makes every entry expire that long after it was written.

    ``counted=True`` keeps the number of keys in an item of its own, changed in the same
    atomic commit as each write that adds or removes a key, so ``len`` is one point read
    (not a count of the table) and right across processes; a write that may add a key
    costs a commit (about 3-4x a plain dump on SQLite). Once an entry is written with an
    expiry, ``len`` counts natively again (expired entries leave without a write). Every
    writer of a counted stash must open it counted.

    On a SQLite file (WAL mode) the answers of ``exists``, ``get`` and ``len`` are kept in
    process (``local_cache`` keys at most; 0: none) for as long as the file's WAL-index
    header is unchanged: any commit by any process or connection changes it, so a
    cached answer is never stale (docs/stash-memo.md, "The answer cache").

    Example::

        stash = AsyncStoreStash("sqlite:///cache.db", "reports")
        await stash.dump("2024-05", {"rows": 3})
        await stash.get("2024-05")     # {"rows": 3}
    """

    def __init__(
        self,
        db_or_url: AsyncDatabase | str,
        name: str,
        *,
        codec: str = "json",
        secret: bytes | str | None = None,
        ttl: dt.timedelta | None = None,
        value_type: Any = Any,
        counted: bool = False,
        local_cache: int = 10_000,
    ) -> None:
        self.database, self._owns_database = open_async_database(db_or_url)
        self.name = name
        self.entry = entry_type(name, indexed=indexes_cheaply(self.database))
        self.store: AsyncStore[Any] = self.database.store(self.entry)
        if codec == "pickle" and secret is None:
            secret = database_secret(self.database)
        self.codec = Codec(codec, secret=secret, type=value_type)
        if ttl is not None and ttl <= dt.timedelta(0):
            raise ValidationError("ttl must be positive", field="ttl")
        self.ttl = ttl
        self._sequence: AsyncStore[Any] | None = None
        self.counter = AsyncCounter(self.database, name, self.store) if counted else None
        self._answers = answers_for(self.database, local_cache)

    @classmethod
    def of(cls, store: AsyncStore[Any]) -> AsyncStoreItemStash:
        """Any store as a stash of its items, keyed by the store's keys; every layer
        composes under it.

        Example::

            notes = AsyncStoreStash.of(cached(db.store(Note)))
            await notes.get(str(note_id))
        """
        return AsyncStoreItemStash(store)

    def _entry(self, key: Any, value: Any, ttl: dt.timedelta | None = None) -> Any:
        ttl = ttl or self.ttl
        return self.entry(
            key=check_key(key),
            value=self.codec.encode(value),
            expires_at=None if ttl is None else _now() + ttl,
        )

    @staticmethod
    def _expired(entry: Any) -> bool:
        return entry.expires_at is not None and entry.expires_at <= _now()

    # The reads are a hit of the answer cache (its header unchanged) or one point read of
    # the store, the answer kept for next time; the store hides an expired entry.

    async def _read(self, key: Any) -> Any:
        k = key if type(key) is str else check_key(key)
        answers = self._answers
        if answers is None:
            return await self.store.read(k)
        token = answers.begin()  # the header before the query
        entry = await self.store.read(k)
        answers.put(token, k, entry)
        return entry

    async def get(self, key: Any, default: Any = None) -> Any:
        answers = self._answers
        if answers is not None:
            found = answers.entry(key)
            if found is not None and found[0] is not PRESENT:
                return default if found[0] is MISSING else self.codec.decode(found[0])
        entry = await self._read(key)
        return default if entry is None else self.codec.decode(entry.value)

    async def load(self, key: Any) -> Any:
        return await self.get(key)

    async def _lookup(self, key: Any) -> Any:
        return await self.get(key, MISSING)

    async def exists(self, key: Any) -> bool:
        answers = self._answers
        if answers is not None:
            found = answers.entry(key)
            if found is not None:
                return found[0] is not MISSING
        return await self._read(key) is not None

    def _forget(self) -> None:
        """After a write: no answer kept from before it (the header changes too)."""
        if self._answers is not None:
            self._answers.forget()

    async def dump(self, key: Any, value: Any) -> None:
        try:
            if self.counter is not None:
                await self.counter.dump(self._entry(key, value))
            else:
                await self.store.put(self._entry(key, value))
        finally:
            self._forget()

    async def dump_for(self, key: Any, value: Any, ttl: dt.timedelta | None) -> None:
        """``dump`` with its own ``ttl`` (``None``: the stash's)."""
        try:
            if self.counter is not None:
                await self.counter.dump(self._entry(key, value, ttl))
            else:
                await self.store.put(self._entry(key, value, ttl))
        finally:
            self._forget()

    async def dump_all(self, pairs: Iterable[tuple[Any, Any]]) -> None:
        try:
            entries = [self._entry(k, v) for k, v in pairs]
            if self.counter is not None:
                await self.counter.dump_all(entries)
            else:
                await _put_all(self.store, entries)
        finally:
            self._forget()

    async def add(self, key: Any, value: Any) -> bool:
        try:
            entry = self._entry(key, value)
            if self.counter is not None:
                added = await self.counter.add(entry)
                if added is not None:
                    return added
            try:
                await self.store.create(entry)
                return True
            except Conflict:
                pass
            found = await self.store.read(entry.key)
            if found is not None and self._expired(found):
                try:  # an expired entry is no value: take its place, unless someone else did
                    await self.store.update(entry, if_match=etag(found))
                    return True
                except (PreconditionFailed, NotFound):
                    return False
            return False
        finally:
            self._forget()

    async def delete(self, key: Any) -> None:
        try:
            if self.counter is not None:
                await self.counter.delete(check_key(key))
                return
            with contextlib.suppress(NotFound):
                await self.store.delete(check_key(key))
        finally:
            self._forget()

    async def keys(self, prefix: str | None = None) -> Iterable[Any]:
        f = F.key.startswith(prefix) if prefix else None
        return [e.key async for e in self.store.search_all(f, page_size=PAGE)]

    async def count(self) -> int:
        answers = self._answers
        if answers is None:
            return await self._count()
        n = answers.count()
        if n is not None:
            return n
        token = answers.begin()
        if token is None:
            return await self._count()
        # the earliest expiry first: whatever the count then counts expires no sooner
        first = await self.store.search(F.expires_at != None, order="expires_at", limit=1)  # noqa: E711
        n = await self._count()
        until = first.items[0].expires_at.timestamp() if first.items else None
        answers.put_count(token, n, until)
        return n

    async def _count(self) -> int:
        if self.counter is not None:
            return await self.counter.length()
        return await self.store.count()

    async def clear(self) -> None:
        try:
            if self.counter is not None:
                await self.counter.clear()
            else:
                await self.store.delete_all(None)
        finally:
            self._forget()

    async def next_sequence(self) -> int:
        """The next number of this stash's sequence (unique across every writer)."""
        if self._sequence is None:
            self._sequence = self.database.store(sequence_type(self.name))
        item = await self._sequence.create(self._sequence.meta.cls())
        await self._sequence.delete(self._sequence.key_of(item))
        return int(item.n)

    async def close(self) -> None:
        if self._owns_database:
            await self.database.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.database.url!r}, {self.name!r})"


class AsyncStoreItemStash(AsyncStash):
    """A stash of the items of one store (``AsyncStoreStash.of(store)``): ``dump(key, item)``
    puts the item (its key must be ``key``), ``get`` reads, ``count`` counts natively.

    Example::

        stash = AsyncStoreStash.of(db.store(Note))
        await stash.dump(str(n.id), n)
    """

    def __init__(self, store: AsyncStore[Any]) -> None:
        self.store = store

    def _checked(self, key: Any, item: Any) -> Any:
        key = check_key(key)
        if not isinstance(item, self.store.meta.cls):
            raise ValidationError(
                f"this stash holds {self.store.meta.cls.__name__} items, not {type(item).__name__}",
                field="value",
            )
        if self.store.key_of(item) != key:
            raise ValidationError(
                f"the item's key is {self.store.key_of(item)!r}, not {key!r}", field="key"
            )
        return item

    async def load(self, key: Any) -> Any:
        return await self.store.read(check_key(key))

    async def _lookup(self, key: Any) -> Any:
        item = await self.store.read(check_key(key))
        return MISSING if item is None else item

    async def exists(self, key: Any) -> bool:
        return await self.store.read(check_key(key)) is not None

    async def dump(self, key: Any, value: Any) -> None:
        await self.store.put(self._checked(key, value))

    async def dump_all(self, pairs: Iterable[tuple[Any, Any]]) -> None:
        await _put_all(self.store, [self._checked(k, v) for k, v in pairs])

    async def add(self, key: Any, value: Any) -> bool:
        try:
            await self.store.create(self._checked(key, value))
            return True
        except Conflict:
            return False

    async def delete(self, key: Any) -> None:
        with contextlib.suppress(NotFound):
            await self.store.delete(check_key(key))

    async def keys(self, prefix: str | None = None) -> Iterable[Any]:
        keys = [self.store.key_of(i) async for i in self.store.search_all(None, page_size=PAGE)]
        return keys if prefix is None else [k for k in keys if k.startswith(prefix)]

    async def count(self) -> int:
        return await self.store.count()

    async def clear(self) -> None:
        await self.store.delete_all(None)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.store.meta.name!r})"


class AsyncShelveStash(AsyncStoreStash):
    """A one-file stash at ``path`` that several processes can share (zensols'
    ``ShelveStash``; SQLite underneath, so writes are atomic and concurrent readers and
    writers are safe).

    Example::

        async with AsyncShelveStash(Path("data.db")) as stash:
            await stash.dump("cool", [1, 2, 123])
    """

    def __init__(
        self, path: Path | str, *, codec: str = "json", secret: bytes | str | None = None
    ) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        super().__init__(f"sqlite:///{self.path.absolute()}", "shelve", codec=codec, secret=secret)


def shelve(path: Path | str, **options: Any) -> AsyncShelveStash:
    """A :class:`AsyncShelveStash` for a ``with`` block (closed at its end).

    Example::

        async with shelve(Path("data.db")) as stash:
            await stash.dump("cool", [1, 2, 123])
    """
    return AsyncShelveStash(path, **options)
