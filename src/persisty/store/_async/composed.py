"""Writes composed of other Store calls (async): ``put`` through read, create and update,
``Edit.put`` resolved for layers, bulk patches and deletes in batches, and the pause
after lost races.

Edit this file: ``scripts/generate_sync.py`` writes its sync twin ``_sync/composed.py``.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from persisty.errors import (
    Conflict,
    NotFound,
    PersistyError,
    PreconditionFailed,
    ValidationError,
)
from persisty.model import etag
from persisty.query import (
    Filter,
)
from persisty.store._prepare import (
    as_item,
)
from persisty.store._types import (
    Edit,
    EditKind,
)

if TYPE_CHECKING:
    from persisty.store._async.contract import AsyncStore


async def _after_lost_race(attempt: int) -> None:
    """After a few lost races on one item, wait a random moment (growing, at most 50 ms) so
    writers contending for it spread out instead of colliding again in lockstep."""
    if attempt >= 2:
        await asyncio.sleep(random.uniform(0, min(0.05, 0.001 * 2**attempt)))


BULK_CHUNK = 100
MAX_RETRIES = 100
"""How often a write whose item changed between its read and its write is tried again."""


async def patch_keys(
    store: AsyncStore[Any],
    keys: Sequence[str],
    changes: Mapping[str, Any],
    precondition: Filter | None,
) -> int:
    """Patch each of ``keys`` with ``changes`` where ``precondition`` still holds, in
    non-atomic batches through ``store.edit_batch``; return how many changed. A change that
    fails validation raises ``ValidationError`` (the same change fails for every item)."""
    total = 0
    for start in range(0, len(keys), BULK_CHUNK):
        edits = [
            Edit.patch(k, changes, precondition=precondition)
            for k in keys[start : start + BULK_CHUNK]
        ]
        results = await store.edit_batch(edits, atomic=False)
        bad = [r for r in results if not r.ok and r.code == "validation_error"]
        if bad:
            raise ValidationError(bad[0].message or "invalid change", field=bad[0].field)
        total += sum(1 for r in results if r.ok)
    return total


async def delete_keys(
    store: AsyncStore[Any], keys: Sequence[str], precondition: Filter | None
) -> int:
    """Delete each of ``keys`` where ``precondition`` still holds, in non-atomic batches
    through ``store.edit_batch``; return how many were deleted."""
    total = 0
    for start in range(0, len(keys), BULK_CHUNK):
        edits = [
            Edit.delete(k, precondition=precondition) for k in keys[start : start + BULK_CHUNK]
        ]
        results = await store.edit_batch(edits, atomic=False)
        total += sum(1 for r in results if r.ok)
    return total


async def put_through(store: AsyncStore[Any], item: Any, if_match: str | None) -> Any:
    """``put`` made of ``store``'s own ``read``, ``create`` and ``update`` (so a layer's
    checks apply to it): update with the etag just read, or create; a concurrent write in
    between makes it try again, never overwrite what it did not see."""
    item = as_item(store.meta, item)
    key = store.meta.key_of(item)
    for _ in range(MAX_RETRIES):
        current = await store.read(key)
        if current is None:
            if if_match is not None:
                raise PreconditionFailed("the item does not exist (etag does not match)")
            try:
                return await store.create(item)
            except Conflict:
                if await store.read(key) is None:
                    raise  # a unique index, not the key
                continue
        try:
            return await store.update(item, if_match=if_match or etag(current))
        except PreconditionFailed:
            if if_match is not None:
                raise
        except NotFound:
            continue
    raise Conflict("too many concurrent changes; try again")


async def resolve_puts(store: AsyncStore[Any], edits: Sequence[Edit]) -> list[Edit]:
    """``edits`` with each ``Edit.put`` turned into the create or the update (pinned to the
    etag just read) it is now, for layers whose batch logic knows create and update only;
    a put that then meets a concurrent write fails with ``conflict`` or
    ``precondition_failed`` (retry it)."""
    edits = list(edits)
    puts = [i for i, e in enumerate(edits) if isinstance(e, Edit) and e.kind is EditKind.PUT]
    if not puts:
        return edits
    keys: list[str | None] = []
    for i in puts:
        try:
            keys.append(store.meta.key_of(as_item(store.meta, edits[i].item)))
        except PersistyError:
            keys.append(None)
    wanted = list(dict.fromkeys(k for k in keys if k is not None))
    found = dict(zip(wanted, await store.read_batch(wanted), strict=True)) if wanted else {}
    for i, k in zip(puts, keys, strict=True):
        e = edits[i]
        current = None if k is None else found.get(k)
        if current is None:
            # with an etag the update reports the missing item; without, it is new
            edits[i] = (
                Edit.create(e.item)
                if e.if_match is None
                else Edit.update(e.item, if_match=e.if_match)
            )
        else:
            edits[i] = Edit.update(e.item, if_match=e.if_match or etag(current))
    return edits
