"""The key count of a key/value namespace on SQL: ``len`` and the writes that keep it.

The count item (``KVCount``) holds how many pairs of the namespace have no expiry. Every
write that adds or removes such a pair (or gives one an expiry, or takes it away) changes
it in the same atomic commit as the pair (one SQL transaction, through the counted stash's
``commit_counted``); a write that lost a race with another process (the pair was created,
changed or deleted in between) fails that commit whole and is tried again after a fresh
read. Pairs with an expiry leave without any write when they expire, so they are never in
the count: ``len`` adds the live ones, an index range of ``(ns, expires)``.

The sync twin ``persisty/kv/_sync/_counted.py`` is generated from this file by
``scripts/generate_sync.py``; edit this file, never the twin.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from persisty._retry import attempts, lost_too_often
from persisty.errors import Conflict, NotFound, PreconditionFailed
from persisty.kv._async._sqlfast import AsyncSqlPairs
from persisty.kv._models import KVCount
from persisty.model import etag
from persisty.query import F
from persisty.stash import commit_counted_async
from persisty.store import AsyncStore, Edit

CHUNK = 500  # pairs in one counted transaction (a delete or set_many goes in parts)


def _delta(old: Any, new: Any) -> int:
    """How the count of pairs without expiry changes when ``old`` becomes ``new`` (either
    may be ``None``: absent)."""
    return int(new is not None and new.expires is None) - int(
        old is not None and old.expires is None
    )


class AsyncPairCount:
    """The count of one namespace's pairs and the counted writes of its pairs.

    ``store`` is the service's store (the encrypted layer with ``keys=``), ``raw`` the
    database's own store under it (what a commit takes) and ``seal`` turns an item of
    ``store`` into its stored form in ``raw``.
    """

    def __init__(self, db: Any, ns: str, store: AsyncStore[Any], raw: AsyncStore[Any]) -> None:
        self.db, self.ns, self.store, self.raw = db, ns, store, raw
        self.counts: AsyncStore[Any] = db.store(KVCount)
        layer: Any = store  # the encrypted layer (``keys=``): its stored form and back
        self.seal: Any = layer._seal if store is not raw else (lambda item: item)
        self.open: Any = layer._open if store is not raw else (lambda item: item)
        self._ready = False
        # SQL (always, where a count is kept): the one-statement paths
        self.fast = AsyncSqlPairs(ns, raw, self.counts)

    async def _row(self) -> Any:
        row = await self.counts.read(self.ns)
        if row is None:
            # the first counted opening of the namespace counts what is there (every writer
            # is counted, and none writes a pair before the count item exists)
            n = await self.raw.count((F.ns == self.ns) & (F.expires == None))  # noqa: E711
            try:
                row = await self.counts.create(KVCount(ns=self.ns, n=n))
            except Conflict:
                row = await self.counts.read(self.ns)
                if row is None:
                    raise Conflict("the key count vanished; try again") from None
        self._ready = True
        return row

    async def length(self) -> int:
        """The pairs without expiry (one point read) plus the live ones with an expiry."""
        if self._ready:
            n = await self.fast.length()  # one query
            if n is not None:
                return n
        row = await self._row()
        expiring = await self.raw.count((F.ns == self.ns) & (F.expires != None))  # noqa: E711
        return int(row.n) + expiring

    async def _commit(self, edits: list[Edit], delta: int) -> list[Any] | None:
        if not self._ready:
            await self._row()
        writes: list[tuple[AsyncStore[Any], Edit]] = [(self.raw, e) for e in edits]
        results = await commit_counted_async(self.db, writes, self.counts, self.ns, delta)
        return None if results is None else [r.item for r in results]

    async def set(self, item: Any, if_match: str | None) -> Any:
        """Store ``item`` (``if_match``: only over that etag); return what was stored."""
        if not self._ready:
            await self._row()
        # over an absent pair or one without expiry: one statement where the engine can
        if if_match is None and item.expires is None and await self.fast.put(self.seal(item)):
            return item
        same = (F.expires == None) if item.expires is None else (F.expires != None)  # noqa: E711
        for _ in attempts():
            try:  # the pair is there with (or without) an expiry as the new one: no change
                return await self.store.update(item, if_match=if_match, precondition=same)
            except NotFound:
                if if_match is not None:
                    raise PreconditionFailed("the pair is not there (if_match)") from None
                if item.expires is not None:
                    try:
                        return await self.store.create(item)
                    except Conflict:
                        continue
                done = await self._commit([Edit.create(self.seal(item))], 1)
            except PreconditionFailed:
                old = await self.raw.read(self.raw.key_of(item))
                if old is None:
                    continue
                # an etag given out is of the item as the service shows it
                if if_match is not None and etag(self.open(old)) != if_match:
                    raise
                edit = Edit.update(self.seal(item), if_match=etag(old))
                done = await self._commit([edit], _delta(old, item))
            if done is not None:
                return self.open(done[0])
        raise lost_too_often()

    async def add(self, item: Any) -> bool:
        """Create ``item`` if its key has no live pair."""
        if item.expires is not None:
            try:
                await self.store.create(item)
                return True
            except Conflict:
                return False
        for _ in attempts():
            if await self._commit([Edit.create(self.seal(item))], 1) is not None:
                return True
            if await self.raw.read(self.raw.key_of(item)) is not None:
                return False
        raise lost_too_often()

    async def set_many(self, items: Sequence[Any]) -> None:
        """Store every item of ``items`` (distinct keys), all or none (in atomic parts of
        ``CHUNK`` on the count's own behalf)."""
        for start in range(0, len(items), CHUNK):
            part = items[start : start + CHUNK]
            keys = [self.raw.key_of(i) for i in part]
            for _ in attempts():
                found = await self.raw.read_batch(keys)
                edits = [
                    Edit.create(self.seal(i))
                    if f is None
                    else Edit.update(self.seal(i), if_match=etag(f))
                    for i, f in zip(part, found, strict=True)
                ]
                delta = sum(_delta(f, i) for i, f in zip(part, found, strict=True))
                if await self._commit(edits, delta) is not None:
                    break
            else:
                raise lost_too_often()

    async def delete(self, keys: Sequence[str], if_match: str | None = None) -> list[Any]:
        """Delete the pairs of ``keys`` (stored keys, distinct; missing ones ignored);
        return the deleted pairs (as the service shows them). With ``if_match`` (one key)
        only over that etag, else nothing."""
        gone: list[Any] = []
        for start in range(0, len(keys), CHUNK):
            part = keys[start : start + CHUNK]
            for _ in attempts():
                found = [f for f in await self.raw.read_batch(part) if f is not None]
                if if_match is not None and (not found or etag(self.open(found[0])) != if_match):
                    return []
                edits = [Edit.delete(self.raw.key_of(f), if_match=etag(f)) for f in found]
                if (
                    not edits
                    or await self._commit(edits, -sum(_delta(None, f) for f in found)) is not None
                ):
                    gone += [self.open(f) for f in found]
                    break
            else:
                raise lost_too_often()
        return gone

    async def discard(self) -> int:
        """Delete every pair of the namespace; return how many there were."""
        total = 0
        for _ in range(10**6):
            page = await self.raw.search(F.ns == self.ns, limit=CHUNK)
            if not page.items:
                return total
            total += len(await self.delete([self.raw.key_of(p) for p in page.items]))
        raise lost_too_often()
