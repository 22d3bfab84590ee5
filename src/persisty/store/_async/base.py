"""The base class backends build on (async): ``AsyncStoreBase``, the single-item methods
of ``AsyncStoreCore`` plus the batch engine (``edit_batch``, ``restore``, ``update_all``,
``delete_all``).

Edit this file: ``scripts/generate_sync.py`` writes its sync twin ``_sync/base.py``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from persisty.errors import (
    Conflict,
    NotFound,
    PersistyError,
    PreconditionFailed,
    ValidationError,
)
from persisty.model import etag, etags_of
from persisty.query import (
    NONE,
    Filter,
    validate_filter,
)
from persisty.store._async.composed import MAX_RETRIES, delete_keys, patch_keys
from persisty.store._async.core import AsyncStoreCore
from persisty.store._prepare import (
    as_item,
    check_changes,
    prepare_create,
    prepare_creates,
    prepare_patch,
    prepare_update,
)
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

T = TypeVar("T")


class AsyncStoreBase(AsyncStoreCore[T]):
    """The Store logic every backend shares; a backend implements the ``_`` hooks only.

    Hooks: ``_get`` (item and stored etag), ``_commit`` (apply write ops, all or nothing
    when ``atomic``), ``_find`` (natively filtered, sorted, after a position, limited),
    and optionally ``_get_many``, ``_count``, ``_plan`` (split a filter into native and
    residual parts: a :class:`Plan`), ``_describe`` and ``_next_sequence``. Two
    capability flags ask for the engine's strengths: ``checks_expected`` and
    ``finds_residual``.

    Expiry: when the model has an ``Attr(expires=True)`` attribute, an item whose expiry is
    at or before ``self.clock()`` is treated as absent by every method (the hooks still
    return it; this class filters), and creating its key again replaces it. ``clock`` is
    the database's :class:`Clock` (``db.clock``), which tests may set.
    """

    # ---- batches ------------------------------------------------------------------------

    async def edit_batch(self, edits: Sequence[Edit], atomic: bool = True) -> list[EditResult[T]]:
        edits = list(edits)
        if (
            len(edits) > 1
            and not self.meta.sequence_attrs
            and self.meta.expires is None
            and all(isinstance(e, Edit) and e.kind is EditKind.CREATE for e in edits)
        ):
            ops = self._inserts(edits)
            if ops is not None:
                errors = await self._commit(ops, atomic)
                if not any(errors):
                    return [
                        EditResult(e, True, None, op.item) for e, op in zip(edits, ops, strict=True)
                    ]
                return self._results(edits, list(ops), errors, atomic)
        for _ in range(MAX_RETRIES):
            results, retry = await self._try_batch(edits, atomic)
            if not retry:
                return results
        raise Conflict("too many concurrent changes; try again")

    async def _try_batch(self, edits: list[Edit], atomic: bool) -> tuple[list[EditResult[T]], bool]:
        """One attempt; ``retry`` is true when an etag we read ourselves went stale."""
        ops: list[WriteOp | None] = []
        errors: list[PersistyError | None] = []
        expiring = self.meta.expires is not None
        needed = [
            self._edit_key(e)
            for e in edits
            if e.kind != EditKind.CREATE or (expiring and isinstance(e, Edit))
        ]
        state: dict[Key, tuple[Any, str] | None] = {}
        stale: dict[Key, str] = {}  # keys held by expired items: their etags
        keys = [k for k in needed if k is not None]
        now = self.clock()
        if keys:
            uniq = list(dict.fromkeys(keys))
            for k, found in zip(uniq, await self._get_many(uniq), strict=True):
                if found is not None and expiring and self._expired(found[0], now):
                    stale[k] = found[1]
                    found = None
                state[k] = found
        for e in edits:
            try:
                op = await self._resolve(e, state, now, stale)
                ops.append(op)
                errors.append(None)
            except PersistyError as failure:
                ops.append(None)
                errors.append(failure)
        if atomic and any(x is not None for x in errors):
            return self._results(edits, ops, errors, atomic), False
        todo = [(i, op) for i, op in enumerate(ops) if op is not None]
        committed = await self._commit([op for _, op in todo], atomic) if todo else []
        again: list[int] = []
        for (i, op), outcome in zip(todo, committed, strict=True):
            raced = (
                isinstance(outcome, PreconditionFailed)
                and edits[i].if_match is None
                and (not isinstance(op, Insert))
            )
            if (
                edits[i].kind is EditKind.PUT
                and edits[i].if_match is None
                and (
                    isinstance(outcome, PreconditionFailed | NotFound)
                    or (
                        isinstance(outcome, Conflict)
                        and isinstance(op, Insert)
                        and (await self._get_live(op.key))[0] is not None
                    )
                )
            ):
                raced = True  # a put resolved against a state that changed: resolve it again
            if raced:
                # the item changed after we read it; the edit's own conditions may still hold
                if atomic:
                    return [], True
                again.append(i)
            errors[i] = outcome
        for i in again:
            try:
                ops[i] = await self._apply_alone(edits[i])
                errors[i] = None
            except PersistyError as e:
                errors[i] = e
        return self._results(edits, ops, errors, atomic), False

    def _inserts(self, edits: list[Edit]) -> list[Insert] | None:
        """The inserts of a batch of creates, validated in one pass; ``None`` when an item
        is invalid or two share a key (the general path then names the culprit)."""
        meta = self.meta
        try:
            news = prepare_creates(meta, [e.item for e in edits], self.clock())
        except PersistyError:
            return None
        docs = meta.encode_many(news)
        keys = [meta.key_values(n) for n in news]
        if len(set(keys)) < len(keys):
            return None
        return [
            Insert(k, n, tag, doc)
            for k, n, tag, doc in zip(keys, news, etags_of(docs), docs, strict=True)
        ]

    async def _apply_alone(self, e: Edit) -> WriteOp:
        """One edit through the single-item methods (which retry on concurrent changes)."""
        if e.kind == EditKind.DELETE:
            assert e.key is not None
            await self.delete(e.key, if_match=e.if_match, precondition=e.precondition)
            return Remove(self.meta.parse_key(e.key))
        if e.kind == EditKind.UPDATE:
            new = await self.update(e.item, if_match=e.if_match, precondition=e.precondition)
        elif e.kind == EditKind.PUT:
            new = await self.put(e.item, if_match=e.if_match)
        else:
            assert e.key is not None
            new = await self.patch(
                e.key, e.changes or {}, if_match=e.if_match, precondition=e.precondition
            )
        return Replace(self.meta.key_values(new), new, etag(new))

    def _edit_key(self, e: Edit) -> Key | None:
        try:
            if e.kind in (EditKind.UPDATE, EditKind.PUT, EditKind.CREATE):
                item = (
                    e.item
                    if isinstance(e.item, self.meta.cls)
                    else (self.meta.from_builtins(e.item))
                )
                return self.meta.key_values(item)
            return self.meta.parse_key(e.key)
        except PersistyError:
            return None

    async def _resolve(
        self,
        e: Edit,
        state: dict[Key, tuple[Any, str] | None],
        now: Any,
        stale: dict[Key, str] | None = None,
    ) -> WriteOp:
        meta = self.meta
        if not isinstance(e, Edit):
            raise ValidationError(f"not an Edit: {e!r}")
        if e.kind == EditKind.PUT:
            item = as_item(meta, e.item)
            key = meta.key_values(item)
            if key not in state:  # a put the batch has not read (bad key): read it now
                found, held = await self._get_live(key)
                state[key] = found
                if held is not None and stale is not None:
                    stale[key] = held
            if state[key] is not None:
                e = Edit(EditKind.UPDATE, item=item, if_match=e.if_match)
            elif e.if_match is not None:
                raise PreconditionFailed("the item does not exist (etag does not match)")
            else:
                e = Edit.create(item)
        if e.kind == EditKind.CREATE:
            new = prepare_create(meta, e.item, now, await self._sequences())
            key = meta.key_values(new)
            tag = etag(new)
            if key in state and state[key] is not None:
                raise Conflict(f"{meta.name} {meta.key_string(key)!r} already exists")
            state[key] = (new, tag)
            held = None if stale is None else stale.pop(key, None)
            if held is not None:
                return Replace(key, new, tag, held)
            return Insert(key, new, tag)
        if e.kind == EditKind.UPDATE:
            item = e.item if isinstance(e.item, meta.cls) else meta.from_builtins(e.item)
            key = meta.key_values(item)
        else:
            key = meta.parse_key(e.key)
        found = state.get(key)
        if found is None:
            raise NotFound(f"no {meta.name} with key {meta.key_string(key)!r}")
        self._check(found, e.if_match, e.precondition)
        if e.kind == EditKind.DELETE:
            state[key] = None
            return Remove(key, found[1], found[0])
        if e.kind == EditKind.UPDATE:
            new = prepare_update(meta, item, found[0], now)
        else:
            new = prepare_patch(meta, found[0], check_changes(meta, e.changes or {}), now)
        tag = etag(new)
        state[key] = (new, tag)
        return Replace(key, new, tag, found[1], found[0])

    def _results(
        self,
        edits: list[Edit],
        ops: list[WriteOp | None],
        errors: list[PersistyError | None],
        atomic: bool,
    ) -> list[EditResult[T]]:
        return edit_results(edits, ops, errors, atomic=atomic)

    async def restore(self, items: Sequence[Any], *, replace: bool = False) -> list[EditResult[T]]:
        """Write ``items`` exactly as given: generated values (``created``/``updated``
        timestamps, sequences) are kept, not stamped anew, so every item keeps its etag;
        what ``persisty import`` does with an export. Each item is validated and written on
        its own (not atomically); an existing key is a ``conflict`` unless ``replace``.

        Example::

            note = await notes.create(Note(owner="ann", title="Hi"))
            await notes.delete(notes.key_of(note))
            results = await notes.restore([note])      # e.g. from a backup
            assert results[0].ok and await notes.read(notes.key_of(note)) == note
        """
        meta = self.meta
        results: list[EditResult[T] | None] = [None] * len(items)
        inserts: list[tuple[int, Insert]] = []
        for i, item in enumerate(items):
            try:
                new = meta.validate(item)
            except PersistyError as e:
                results[i] = EditResult(Edit.create(item), False, e.code, None, e.message, e.field)
                continue
            inserts.append((i, Insert(meta.key_values(new), new, etag(new))))
        errors = await self._commit([op for _, op in inserts], False) if inserts else []
        again: list[tuple[int, Insert, PersistyError]] = []
        for (i, op), err in zip(inserts, errors, strict=True):
            if err is None:
                results[i] = EditResult(Edit.create(op.item), True, None, op.item)
            elif replace and isinstance(err, Conflict):
                again.append((i, op, err))
            else:
                results[i] = EditResult(
                    Edit.create(op.item), False, err.code, None, err.message, err.field
                )
        if again:
            replaced = await self._commit(
                [Replace(op.key, op.item, op.etag) for _, op, _ in again], False
            )
            for (i, op, first), err in zip(again, replaced, strict=True):
                if err is None:
                    results[i] = EditResult(Edit.update(op.item), True, None, op.item)
                else:  # not there: the conflict was on a unique index, not the key
                    failure = first if isinstance(err, NotFound) else err
                    results[i] = EditResult(
                        Edit.update(op.item),
                        False,
                        failure.code,
                        None,
                        failure.message,
                        failure.field,
                    )
        await self._advance_sequences([r.item for r in results if r is not None and r.ok])
        return [r for r in results if r is not None]

    async def update_all(self, filter: Filter | None, changes: Mapping[str, Any]) -> int:
        changes = check_changes(self.meta, changes)
        f = validate_filter(filter, self.meta)
        if f is NONE:
            return 0
        keys = [self.meta.key_of(i) async for i in self.search_all(f)]
        return await patch_keys(self, keys, changes, f)

    async def delete_all(self, filter: Filter | None) -> int:
        f = validate_filter(filter, self.meta)
        if f is NONE:
            return 0
        keys = [self.meta.key_of(i) async for i in self.search_all(f)]
        return await delete_keys(self, keys, f)
