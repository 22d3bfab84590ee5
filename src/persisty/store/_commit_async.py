"""Writes to several stores of one database in one commit (``db.commit``).

Each store's edits are resolved against its stored items (as ``edit_batch`` does) into write
operations, then the database applies all of them at once: one SQL transaction, one
DynamoDB ``TransactWriteItems``, one Redis transaction, one lock over the memory or
directory tables. A write whose etag was read here and went stale in between makes the whole
commit resolve and try again, so a concurrent change is never overwritten unseen.

The sync twin ``_commit_sync.py`` is generated from this file; edit this one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from persisty.errors import Conflict, PersistyError, PreconditionFailed, ValidationError
from persisty.model import etag
from persisty.store._prepare import prepare_update
from persisty.store._types import (
    Edit,
    EditKind,
    EditResult,
    Insert,
    Key,
    Remove,
    Replace,
    WriteOp,
    edit_results,
)

if TYPE_CHECKING:
    from persisty.store._async import AsyncDatabase, AsyncStore, AsyncStoreBase

MAX_WRITES = 1000
MAX_ATTEMPTS = 50

Group = tuple["AsyncStoreBase[Any]", list[int]]


def _checked(writes: Sequence[tuple[Any, Edit]]) -> list[tuple[Any, Edit]]:
    if isinstance(writes, str | bytes) or not isinstance(writes, Sequence):
        raise ValidationError("commit takes a list of (store, Edit) pairs", field="writes")
    if len(writes) > MAX_WRITES:
        raise ValidationError(f"one commit takes at most {MAX_WRITES} writes", field="writes")
    out = []
    for w in writes:
        if not (
            isinstance(w, tuple)
            and len(w) == 2
            and isinstance(w[1], Edit)
            and hasattr(w[0], "edit_batch")
        ):
            raise ValidationError(f"not a (store, Edit) pair: {w!r}", field="writes")
        out.append(w)
    return out


def _group(
    db: AsyncDatabase, writes: list[tuple[Any, Edit]], atomic: bool
) -> list[tuple[AsyncStore[Any], list[int]]]:
    own = {id(s) for s in db._stores.values()}
    groups: dict[int, tuple[AsyncStore[Any], list[int]]] = {}
    for i, (store, _) in enumerate(writes):
        if atomic and id(store) not in own:
            base = store
            while getattr(base, "inner", None) is not None:
                base = base.inner
            what = (
                "a layer: an atomic commit takes the database's own stores"
                if id(base) in own
                else "of another database"
            )
            raise ValidationError(
                f"the store of {store.meta.name} is {what} "
                "(commit with atomic=False, or use one database)",
                field="writes",
            )
        if atomic and not (hasattr(store, "_resolve") and hasattr(store, "_commit")):
            raise ValidationError(
                f"the store of {store.meta.name} cannot take part in an atomic commit",
                field="writes",
            )
        groups.setdefault(id(store), (store, []))[1].append(i)
    return list(groups.values())


async def commit_edits(
    db: AsyncDatabase, writes: Sequence[tuple[Any, Edit]], atomic: bool
) -> list[EditResult[Any]]:
    """What ``db.commit`` does: one result per write, in order."""
    pairs = _checked(writes)
    if not pairs:
        return []
    groups = _group(db, pairs, atomic)
    results: list[EditResult[Any] | None] = [None] * len(pairs)
    if not atomic:
        for store, idx in groups:
            done = await store.edit_batch([pairs[i][1] for i in idx], atomic=False)
            for i, r in zip(idx, done, strict=True):
                results[i] = r
        return [r for r in results if r is not None]
    for _ in range(MAX_ATTEMPTS):
        outcome = await _attempt(db, pairs, groups)  # type: ignore[arg-type]
        if outcome is not None:
            return outcome
    raise Conflict("too many concurrent changes; try again")


async def _attempt(
    db: AsyncDatabase, pairs: list[tuple[Any, Edit]], groups: list[Group]
) -> list[EditResult[Any]] | None:
    """One try of an atomic commit; ``None`` when an etag read here went stale."""
    planned: list[tuple[AsyncStoreBase[Any], list[int], list[WriteOp]]] = []
    ops: list[WriteOp | None] = [None] * len(pairs)
    errors: list[PersistyError | None] = [None] * len(pairs)
    for store, idx in groups:
        got, errs = await plan_edits(store, [pairs[i][1] for i in idx])
        for i, op, err in zip(idx, got, errs, strict=True):
            ops[i], errors[i] = op, err
        planned.append((store, idx, [op for op in got if op is not None]))
    if not any(errors):
        committed = await db._commit_stores([(store, o) for store, _, o in planned])
        for (_, idx, _), errs in zip(planned, committed, strict=True):
            for i, err in zip(idx, errs, strict=True):
                errors[i] = err
        for i, err in enumerate(errors):
            if (
                isinstance(err, PreconditionFailed)
                and pairs[i][1].if_match is None
                and (not isinstance(ops[i], Insert))
            ):
                return None  # changed after it was read: resolve everything again
    edits = [e for _, e in pairs]
    return edit_results(
        edits, ops, errors, atomic=True, aborted="another write of the commit failed"
    )


async def plan_edits(
    store: AsyncStoreBase[Any], edits: list[Edit]
) -> tuple[list[WriteOp | None], list[PersistyError | None]]:
    """The write operations ``edits`` make on ``store`` now (as ``edit_batch`` resolves
    them: etags pinned to what was read), or the error of each edit that cannot apply."""
    expiring = store.meta.expires is not None

    def blind(e: Edit) -> bool:
        """A write the engine checks by itself, so it needs no read first: a delete (the
        engine finds the key, and compares the etag when it checks expected etags), or an
        update with ``if_match`` that keeps nothing of the stored item on such an engine."""
        if not isinstance(e, Edit) or e.precondition is not None or expiring:
            return False
        if e.kind is EditKind.DELETE:
            return e.if_match is None or store.checks_expected
        return (
            e.kind is EditKind.UPDATE
            and e.if_match is not None
            and store.checks_expected
            and store._blind_update
        )

    keys = [
        k
        for k in (
            store._edit_key(e)
            for e in edits
            if (e.kind != EditKind.CREATE or expiring) and not blind(e)
        )
        if k is not None
    ]
    state: dict[Key, tuple[Any, str] | None] = {}
    stale: dict[Key, str] = {}
    now = store.clock()
    if keys:
        uniq = list(dict.fromkeys(keys))
        for k, found in zip(uniq, await store._get_many(uniq), strict=True):
            if found is not None and expiring and store._expired(found[0], now):
                stale[k] = found[1]
                found = None
            state[k] = found
    ops: list[WriteOp | None] = []
    errors: list[PersistyError | None] = []
    for e in edits:
        try:
            if blind(e) and store._edit_key(e) not in state:
                ops.append(_unread(store, e, state, now))
                errors.append(None)
                continue
            ops.append(await store._resolve(e, state, now, stale))
            errors.append(None)
        except PersistyError as failure:
            ops.append(None)
            errors.append(failure)
    return ops, errors


def _unread(
    store: AsyncStoreBase[Any], e: Edit, state: dict[Key, tuple[Any, str] | None], now: Any
) -> WriteOp:
    """The write of a ``blind`` edit, made without reading the item."""
    meta = store.meta
    if e.kind is EditKind.DELETE:
        key = meta.parse_key(e.key)
        state[key] = None
        return Remove(key, e.if_match)
    item = e.item if isinstance(e.item, meta.cls) else meta.from_builtins(e.item)
    new = prepare_update(meta, item, item, now)
    tag = etag(new)
    key = meta.key_values(new)
    state[key] = (new, tag)
    return Replace(key, new, tag, e.if_match)


async def commit_one_store(
    groups: list[tuple[AsyncStoreBase[Any], list[WriteOp]]], engine: str
) -> list[list[PersistyError | None]]:
    """The default of ``_commit_stores``: atomic for one store only."""
    if len(groups) == 1:
        store, ops = groups[0]
        return [await store._commit(ops, True)]
    raise ValidationError(f"{engine} cannot commit to several stores atomically", field="writes")
