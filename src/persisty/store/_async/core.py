"""The single-item writes of the base class backends build on (async): create, put,
update, patch and delete, each one conditional write (read first only where the engine
cannot check the etag itself, or the write keeps something of the stored item), retried
when it loses a race. ``AsyncStoreCore`` stands on ``AsyncStoreReads`` (``reads.py``) and
``AsyncStoreHooks`` (``hooks.py``); ``AsyncStoreBase`` (``base.py``) adds the batch engine.

Edit this file: ``scripts/generate_sync.py`` writes its sync twin ``_sync/core.py``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from persisty.errors import Conflict, NotFound, PreconditionFailed
from persisty.model import etag, etag_of
from persisty.query import Filter
from persisty.store._async.composed import MAX_RETRIES, _after_lost_race
from persisty.store._async.reads import AsyncStoreReads
from persisty.store._prepare import (
    as_item,
    check_changes,
    prepare_create,
    prepare_patch,
    prepare_update,
)
from persisty.store._types import Insert, Key, Remove, Replace, WriteOp

T = TypeVar("T")


class AsyncStoreCore(AsyncStoreReads[T]):
    """The single-item half of :class:`AsyncStoreBase` (which backends subclass): the
    reads of :class:`AsyncStoreReads` and the single-item writes of the contract."""

    async def create(self, item: T) -> T:
        new = prepare_create(self.meta, item, self.clock(), await self._sequences())
        key = self.meta.key_values(new)
        raw = self.meta.encode(new)  # once, for the etag and for the engine
        tag = etag_of(raw)
        try:
            await self._commit_one(Insert(key, new, tag, raw))
        except Conflict:
            if self.meta.expires is None:
                raise
            await self._replace_expired(key, new, tag)
        return new  # type: ignore[no-any-return]

    async def _replace_expired(self, key: Key, new: Any, tag: str) -> None:
        """Create ``new`` over an expired item holding its key (the Conflict a create got
        stands when the key holds a live item, or the conflict was on a unique index)."""
        for _ in range(MAX_RETRIES):
            found, stale = await self._get_live(key)
            if found is not None:
                raise Conflict(
                    f"{self.meta.name} {self.meta.key_string(key)!r} already exists",
                    field=self.meta.key.attrs[0],
                )
            try:
                if stale is None:
                    await self._commit_one(Insert(key, new, tag))
                else:
                    await self._commit_one(Replace(key, new, tag, stale))
                return
            except (PreconditionFailed, NotFound):
                continue  # the expired item changed or went away: look again
        raise Conflict("too many concurrent changes; try again")

    async def put(self, item: T, *, if_match: str | None = None) -> T:
        item = as_item(self.meta, item)
        key = self.meta.key_values(item)
        for _ in range(MAX_RETRIES):
            found, stale = await self._get_live(key)
            now = self.clock()
            op: WriteOp
            if found is None:
                if if_match is not None:
                    raise PreconditionFailed("the item does not exist (etag does not match)")
                new = prepare_create(self.meta, item, now, await self._sequences())
                op = (
                    Insert(key, new, etag(new))
                    if stale is None
                    else Replace(key, new, etag(new), stale)
                )
            else:
                self._check(found, if_match, None)
                new = prepare_update(self.meta, item, found[0], now)
                op = Replace(key, new, etag(new), found[1], found[0])
            try:
                await self._commit_one(op)
            except PreconditionFailed:
                if if_match is not None:
                    raise
                self.retries += 1
                continue
            except NotFound:
                continue  # deleted since we read it: create it
            except Conflict:
                if isinstance(op, Insert) and (await self._get_live(key))[0] is not None:
                    continue  # created since we read it: replace it
                raise
            return new  # type: ignore[no-any-return]
        raise Conflict("too many concurrent changes; try again")

    async def update(
        self, item: T, *, if_match: str | None = None, precondition: Filter | None = None
    ) -> T:
        if not isinstance(item, self.meta.cls):
            item = self.meta.from_builtins(item)
        if (
            self.checks_expected
            and self._blind_update
            and precondition is None
            and self.meta.expires is None
        ):
            # nothing of the stored item is kept: one conditional write, no read
            new = prepare_update(self.meta, item, item, self.clock())
            raw = self.meta.encode(new)  # once, for the etag and for the engine
            await self._commit_one(
                Replace(self.meta.key_values(new), new, etag_of(raw), if_match, None, raw)
            )
            return new  # type: ignore[no-any-return]
        key = self.meta.key_values(item)
        for _ in range(MAX_RETRIES):
            found = (await self._get_live(key))[0]
            if found is None:
                raise NotFound(f"no {self.meta.name} with key {self.meta.key_string(key)!r}")
            self._check(found, if_match, precondition)
            new = prepare_update(self.meta, item, found[0], self.clock())
            try:
                await self._commit_one(Replace(key, new, etag(new), found[1], found[0]))
            except PreconditionFailed:
                if if_match is not None:
                    raise
                self.retries += 1
                continue  # changed since we read it: check the precondition again
            return new  # type: ignore[no-any-return]
        raise Conflict("too many concurrent changes; try again")

    async def patch(
        self,
        key: str,
        changes: Mapping[str, Any],
        *,
        if_match: str | None = None,
        precondition: Filter | None = None,
    ) -> T:
        changes = check_changes(self.meta, changes)
        k = self.meta.parse_key(key)
        for attempt in range(MAX_RETRIES):
            found = (await self._get_live(k))[0]
            if found is None:
                raise NotFound(f"no {self.meta.name} with key {key!r}")
            self._check(found, if_match, precondition)
            new = prepare_patch(self.meta, found[0], changes, self.clock())
            try:
                await self._commit_one(Replace(k, new, etag(new), found[1], found[0]))
            except PreconditionFailed:
                if if_match is not None:
                    raise
                self.retries += 1
                await _after_lost_race(attempt)
                continue
            return new  # type: ignore[no-any-return]
        raise Conflict("too many concurrent changes; try again")

    async def delete(
        self, key: str, *, if_match: str | None = None, precondition: Filter | None = None
    ) -> None:
        k = self.meta.parse_key(key)
        if (
            (if_match is None or self.checks_expected)
            and precondition is None
            and (self.meta.expires is None)
        ):
            await self._commit_one(Remove(k, if_match))  # one conditional write, no read
            return
        for _ in range(MAX_RETRIES):
            found = (await self._get_live(k))[0]
            if found is None:
                raise NotFound(f"no {self.meta.name} with key {key!r}")
            self._check(found, if_match, precondition)
            try:
                await self._commit_one(Remove(k, found[1], found[0]))
            except PreconditionFailed:
                if if_match is not None:
                    raise
                self.retries += 1
                continue
            return
        raise Conflict("too many concurrent changes; try again")
