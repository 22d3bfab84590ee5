"""Batches whose conditions a layer checks itself, pinned to the stored version it read.

A layer that shows items differently from how they are stored (the encrypted layer) cannot
pass a caller's ``if_match`` etag or ``precondition`` down, and a layer that must know the
exact item a write replaced (the events layer) has to read it first. Both read the current
items, check the caller's conditions on what the caller sees, and send the edit down with
``if_match`` set to the etag of the stored version they read: if that version changed in
between, the write fails and the batch is tried again, so nothing is lost or half-checked.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from persisty.errors import (
    Conflict,
    NotFound,
    PersistyError,
    PreconditionFailed,
    ValidationError,
)
from persisty.layers._primitives import Outcome
from persisty.model import StoreMeta, etag
from persisty.query import NONE, compile_filter, validate_filter
from persisty.store import (
    AsyncStore,
    Edit,
    EditKind,
    check_changes,
    delete_keys_async,
    patch_keys_async,
)

MAX_ATTEMPTS = 50


def error_result(edit: Edit, err: PersistyError) -> Outcome:
    """A failed outcome for ``err``."""
    return Outcome(edit, False, err.code, message=err.message, field=err.field)


def edit_key(meta: StoreMeta, e: Edit) -> str | None:
    """The normalized key an edit is about (``None`` when it has none that is valid)."""
    try:
        if e.kind in (EditKind.CREATE, EditKind.UPDATE):
            return meta.key_of(e.item) if isinstance(e.item, meta.cls) else None
        return meta.key_string(meta.parse_key(e.key))
    except PersistyError:
        return None


def normalize(meta: StoreMeta, e: Edit) -> Edit:
    """``e`` with a mapping item turned into an item (so its key is fixed)."""
    if not isinstance(e, Edit):
        raise ValidationError(f"not an Edit: {e!r}")
    if e.kind in (EditKind.CREATE, EditKind.UPDATE) and isinstance(e.item, Mapping):
        return replace(e, item=meta.from_builtins(e.item))
    return e


async def pinned_edit_batch(
    inner: AsyncStore[Any],
    meta: StoreMeta,
    edits: Sequence[Edit],
    atomic: bool,
    *,
    view: Callable[[Any], Any],
    translate: Callable[[Edit], Edit],
    pin_all: bool,
    same_etags: bool,
    predict: Callable[[Edit, Any], Any] | None = None,
) -> list[Outcome]:
    """Apply ``edits`` through ``inner`` with conditions checked on ``view(stored)``.

    ``translate`` turns a caller's edit into the edit ``inner`` gets (it may raise a
    ``PersistyError``, which fails that edit); ``pin_all`` reads and pins every edit of an
    existing item (to know the item it replaces), else only edits with conditions;
    ``same_etags`` says the caller's etags are the stored ones (``view`` keeps items as
    they are), so conditions on an item already edited earlier in the batch pass down;
    else ``predict(edit, before)`` gives the item as the caller will see it after ``edit``
    (generated values aside), and such conditions are checked on that prediction.
    """
    edits = list(edits)
    for _ in range(MAX_ATTEMPTS):
        outcomes, stale = await _attempt(
            inner, meta, edits, atomic, view, translate, pin_all, same_etags, predict
        )
        if not stale:
            return outcomes
        if atomic:
            continue
        for i in stale:  # not atomic: the others are applied; redo the stale ones alone
            (outcomes[i],) = await pinned_edit_batch(
                inner,
                meta,
                [edits[i]],
                True,
                view=view,
                translate=translate,
                pin_all=pin_all,
                same_etags=same_etags,
                predict=predict,
            )
        return outcomes
    raise Conflict("too many concurrent changes; try again")


async def _attempt(
    inner: AsyncStore[Any],
    meta: StoreMeta,
    edits: list[Edit],
    atomic: bool,
    view: Callable[[Any], Any],
    translate: Callable[[Edit], Edit],
    pin_all: bool,
    same_etags: bool,
    predict: Callable[[Edit, Any], Any] | None,
) -> tuple[list[Outcome], list[int]]:
    n = len(edits)
    outcomes: list[Outcome | None] = [None] * n
    normalized: list[Edit | None] = [None] * n
    for i, given in enumerate(edits):
        try:
            normalized[i] = normalize(meta, given)
        except PersistyError as err:
            outcomes[i] = error_result(given, err)
    keys = [None if e is None else edit_key(meta, e) for e in normalized]
    first: dict[str, int] = {}
    for i, k in enumerate(keys):
        if k is not None and k not in first:
            first[k] = i
    conditioned = {
        k
        for k, e in zip(keys, normalized, strict=True)
        if k is not None
        and e is not None
        and (e.if_match is not None or e.precondition is not None)
    }
    wanted = [
        k
        for k, i in first.items()
        if (e := normalized[i]) is not None
        and e.kind != EditKind.CREATE
        and (pin_all or k in conditioned)
    ]
    current: dict[str, Any] = (
        dict(zip(wanted, await inner.read_batch(wanted), strict=True)) if wanted else {}
    )
    planned: list[Edit | None] = [None] * n
    pinned = [False] * n
    olds: list[Any] = [None] * n
    state: dict[str, Any] = {}  # what the caller will see after the edits so far
    for i, maybe in enumerate(normalized):
        if maybe is None:
            continue
        e = maybe
        k = keys[i]
        before: Any = None
        try:
            down = translate(e)
            if k is not None and k in current and first[k] == i:
                stored = current[k]
                if stored is None:
                    raise NotFound(f"no {meta.name} with key {k!r}")
                seen = view(stored)
                if e.if_match is not None and e.if_match != etag(seen):
                    raise PreconditionFailed("the item has changed (etag does not match)")
                if e.precondition is not None and not compile_filter(
                    validate_filter(e.precondition, meta), meta
                )(seen):
                    raise PreconditionFailed("the precondition does not hold")
                down = replace(down, if_match=etag(stored), precondition=None)
                pinned[i] = True
                olds[i] = stored
                before = seen
            elif e.if_match is not None or e.precondition is not None:
                if same_etags:
                    down = replace(down, if_match=e.if_match, precondition=e.precondition)
                elif k is None or k not in state:
                    raise PreconditionFailed("the condition cannot be checked")
                else:
                    before = state[k]
                    if before is None:
                        if e.kind != EditKind.CREATE:
                            raise NotFound(f"no {meta.name} with key {k!r}")
                    elif e.if_match is not None and e.if_match != etag(before):
                        raise PreconditionFailed("the item has changed (etag does not match)")
                    elif e.precondition is not None and not compile_filter(
                        validate_filter(e.precondition, meta), meta
                    )(before):
                        raise PreconditionFailed("the precondition does not hold")
            else:
                before = state.get(k) if k is not None else None
            if (
                predict is not None
                and k is not None
                and (k in state or pinned[i] or e.kind == EditKind.CREATE)
            ):
                state[k] = predict(e, before)
            planned[i] = down
        except PersistyError as err:
            outcomes[i] = error_result(e, err)
    failed = any(o is not None for o in outcomes)
    if atomic and failed:
        return [
            o
            if o is not None
            else Outcome(
                e, False, "aborted", message="not applied: another edit in the batch failed"
            )
            for o, e in zip(outcomes, edits, strict=True)
        ], []
    todo = [i for i in range(n) if planned[i] is not None]
    results = await inner.edit_batch([planned[i] for i in todo], atomic) if todo else []  # type: ignore[misc]
    stale: list[int] = []
    after: dict[str, Any] = {}
    for i, r in zip(todo, results, strict=True):
        e = edits[i]
        k = keys[i]
        if r.ok:
            if not pinned[i] and k is not None and e.kind != EditKind.CREATE:
                olds[i] = after.get(k, r.item if e.kind == EditKind.DELETE else None)
            item = None if e.kind == EditKind.DELETE else r.item
            if k is not None:
                after[k] = item
            outcomes[i] = Outcome(e, True, None, item, olds[i])
        else:
            if r.code == "precondition_failed" and pinned[i] and e.if_match is None:
                stale.append(i)
            outcomes[i] = Outcome(e, False, r.code, None, None, r.message, r.field)
    if stale and atomic:
        return [], stale
    return [o for o in outcomes if o is not None], stale


async def batched_update_all(
    store: AsyncStore[Any], filter: Any, changes: Mapping[str, Any]
) -> int:
    """``update_all`` as patches with the filter as precondition, through ``store``'s own
    ``edit_batch`` (so a layer sees every change)."""
    changes = check_changes(store.meta, changes)
    if validate_filter(filter, store.meta) is NONE:
        return 0
    keys = [store.key_of(i) async for i in store.search_all(filter)]
    return await patch_keys_async(store, keys, changes, filter)


async def batched_delete_all(store: AsyncStore[Any], filter: Any) -> int:
    """``delete_all`` as deletes with the filter as precondition, through ``store``."""
    if validate_filter(filter, store.meta) is NONE:
        return 0
    keys = [store.key_of(i) async for i in store.search_all(filter)]
    return await delete_keys_async(store, keys, filter)
