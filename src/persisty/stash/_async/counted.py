"""The key count of a counted ``AsyncStoreStash`` (``counted=True``): ``len`` is one point
read of a count item (store ``stash_<name>_count``) instead of a count of the table.

The count is right across processes because every write that adds or removes a key
changes it in the same atomic commit (``db.commit``: one SQL transaction, one DynamoDB
``TransactWriteItems``, one Redis transaction): a dump first tries an update of the key
(no count change), else commits its create with ``n + 1``; a delete commits with ``n - 1``;
a create or delete that another process made first fails the commit, which is re-read and
tried again. Expired entries leave the table without any write, so the first entry written
with an expiry marks the count ``expiring`` (for good): from then on ``len`` is the native
count again. Every writer of a counted stash must open it counted.

The sync twin ``persisty/stash/_sync/counted.py`` is generated from this file by
``scripts/generate_sync.py``; edit this file, never the twin.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Sequence
from typing import Any

from persisty.errors import Conflict, NotFound, PersistyError, PreconditionFailed, ValidationError
from persisty.model import stored
from persisty.query import F
from persisty.store import AsyncStore, Edit, EditResult, Increment

ATTEMPTS = 50
CHUNK = 99  # with the count item, 100 writes: DynamoDB's bound on one transaction
_LOCK = threading.Lock()
_COUNTS: dict[str, type[Any]] = {}
_NO_COMMIT_WITH_EXPIRY = ("redis", "rediss", "unix")


def count_type(name: str) -> type[Any]:
    """The type of the count item of the counted stash ``name`` (a checked stash name)."""
    with _LOCK:
        found = _COUNTS.get(name)
        if found is None:

            @stored(key="name", name=f"stash_{name}_count")
            class StashCount:
                name: str
                n: int = 0
                expiring: bool = False

            StashCount.__qualname__ = f"StashCount[{name}]"
            found = _COUNTS[name] = StashCount
        return found


async def commit_counted(
    database: Any,
    writes: list[tuple[AsyncStore[Any], Edit]],
    counts: AsyncStore[Any],
    count_key: str,
    delta: int,
    field: str = "pairs",
) -> list[EditResult[Any]] | None:
    """``writes`` and ``n + delta`` of the count item ``count_key`` (attribute ``n`` in
    ``counts``) in one atomic ``database.commit``: the results of ``writes``, else ``None``
    when a key was created, changed or deleted meanwhile (re-read and try again). Shared by
    the counted stash and ``persisty.kv``'s key count."""
    writes = list(writes)
    if delta:
        writes.append((counts, Edit.patch(count_key, {"n": Increment(delta)})))
    results: list[EditResult[Any]] = await database.commit(writes, atomic=True)
    failed = [r for r in results if not r.ok and r.code != "aborted"]
    if not failed:
        return results[: len(results) - (1 if delta else 0)]
    if failed[0].code in (Conflict.code, NotFound.code, PreconditionFailed.code):
        return None
    if failed[0].code == ValidationError.code:  # too large for one transaction
        raise ValidationError(str(failed[0].message), field=field)
    raise PersistyError(f"the counted write failed: {failed[0].code} {failed[0].message}")


class AsyncCounter:
    """The count item of one counted stash and the counted writes of its entries."""

    def __init__(self, database: Any, name: str, entries: AsyncStore[Any]) -> None:
        if str(getattr(database, "url", "")).split(":", 1)[0] in _NO_COMMIT_WITH_EXPIRY:
            raise ValidationError(
                "counted=True needs an atomic commit over the entries (a store with expiry) "
                "and the count; Redis commits only stores without expiry",
                field="counted",
            )
        self.database, self.name, self.entries = database, name, entries
        self.cls = count_type(name)
        self.store: AsyncStore[Any] = database.store(self.cls)
        self.expiring = False  # seen marked (for good): the writes need not count
        self._ready = False

    async def _row(self) -> Any:
        row = await self.store.read(self.name)
        if row is None:
            # the first counted opening: count what is there (every writer of a counted
            # stash is counted, and none writes before the count item exists)
            n = await self.entries.count()
            expiring = n > 0 and bool(
                (await self.entries.search(F.expires_at != None, limit=1)).items  # noqa: E711
            )
            try:
                row = await self.store.create(self.cls(name=self.name, n=n, expiring=expiring))
            except Conflict:
                row = await self.store.read(self.name)
                if row is None:
                    raise Conflict("the count item of the stash vanished; try again") from None
        self._ready = True
        self.expiring = self.expiring or bool(row.expiring)
        return row

    async def length(self) -> int:
        row = await self._row()
        return await self.entries.count() if row.expiring else int(row.n)

    async def mark_expiring(self) -> None:
        """Before the first entry with an expiry: ``len`` counts natively from now on."""
        if not self.expiring:
            await self._row()
            await self.store.patch(self.name, {"expiring": True})
            self.expiring = True

    async def _commit(self, edits: list[Edit], delta: int) -> bool:
        """``edits`` of the entries and ``n + delta`` in one atomic commit; ``False`` when
        a key was created or deleted meanwhile (re-read and try again)."""
        writes: list[tuple[AsyncStore[Any], Edit]] = [(self.entries, e) for e in edits]
        return await commit_counted(self.database, writes, self.store, self.name, delta) is not None

    async def dump(self, entry: Any) -> None:
        if entry.expires_at is not None:
            await self.mark_expiring()
        if self.expiring:
            await self.entries.put(entry)
            return
        if not self._ready:
            await self._row()
        for _ in range(ATTEMPTS):
            try:
                await self.entries.update(entry)
                return
            except NotFound:
                pass
            if await self._commit([Edit.create(entry)], 1):
                return
        raise Conflict("too many concurrent changes; try again")

    async def dump_all(self, entries: Sequence[Any]) -> None:
        unique = list({e.key: e for e in entries}.values())
        if any(e.expires_at is not None for e in unique):
            await self.mark_expiring()
        if not self._ready:
            await self._row()
        try:
            await self._dump_chunk(unique)  # all at once when the engine takes it
        except ValidationError:
            if len(unique) <= CHUNK:
                raise
            for i in range(0, len(unique), CHUNK):
                await self._dump_chunk(unique[i : i + CHUNK])

    async def _dump_chunk(self, entries: list[Any]) -> None:
        if not entries:
            return
        for _ in range(ATTEMPTS):
            found = await self.entries.read_batch([e.key for e in entries])
            edits = [
                Edit.create(e) if f is None else Edit.update(e)
                for e, f in zip(entries, found, strict=True)
            ]
            if await self._commit(edits, sum(f is None for f in found)):
                return
        raise Conflict("too many concurrent changes; try again")

    async def add(self, entry: Any) -> bool | None:
        """Create ``entry`` if its key is absent; ``None``: not counted (expiring), so the
        stash's own ``add`` applies."""
        if entry.expires_at is not None:
            await self.mark_expiring()
        if not self._ready:
            await self._row()
        if self.expiring:
            return None
        return await self._commit([Edit.create(entry)], 1)

    async def delete(self, key: str) -> None:
        if not self._ready:
            await self._row()
        if self.expiring:
            with contextlib.suppress(NotFound):
                await self.entries.delete(key)
        else:
            await self._commit([Edit.delete(key)], -1)  # False: it was not there

    async def clear(self) -> None:
        if not self._ready:
            await self._row()
        if self.expiring:
            await self.entries.delete_all(None)
            return
        for _ in range(ATTEMPTS * 1000):
            keys = [e.key for e in (await self.entries.search(None, limit=CHUNK)).items]
            if not keys:
                return
            await self._commit([Edit.delete(k) for k in keys], -len(keys))
        raise Conflict("the stash kept being written while it was cleared; try again")
