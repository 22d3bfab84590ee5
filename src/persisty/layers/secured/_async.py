"""The access-control layer (async): a Store as one principal may see and change it.

Edit this file; scripts/generate_sync.py writes its sync twin ``layers/secured/_sync.py``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from persisty._retry import attempts, lost_too_often
from persisty.errors import Conflict, NotFound, PersistyError, PreconditionFailed, ValidationError
from persisty.layers.secured._policy import Policy, Principal
from persisty.layers.secured._view import SecuredView
from persisty.model import etag
from persisty.query import NONE, And, Filter, validate_filter
from persisty.store import (
    AsyncStore,
    AsyncWrappedStore,
    Edit,
    EditKind,
    EditResult,
    Explain,
    OrderArg,
    Page,
    check_changes,
    patch_keys_async,
    patched_attrs,
    prepare_create,
    prepare_patch,
    prepare_update,
    put_through_async,
    resolve_puts_async,
)

T = TypeVar("T")


class AsyncSecuredStore(AsyncWrappedStore[T], SecuredView[T]):
    """``inner`` as ``principal`` may see and change it under ``policy``.

    The policy's read filter is ANDed into every read, search, count, read_batch,
    update_all and delete_all. An item outside it behaves exactly like a missing one:
    ``read`` gives ``None`` and ``update``/``patch``/``delete`` raise ``NotFound``. A visible
    item the policy does not let the principal change, a create it does not allow, or a
    write of an attribute that is not writable raises ``Forbidden``. Attributes the principal
    may not read come back as ``None`` and may not be filtered or ordered on. Use
    :func:`persisty.layers.secured` to build one.

    Example::

        mine = secured(db.store(Note), Policy.owner("owner"), Principal("ann"))
        await mine.create(Note(title="hi"))      # owner is set to "ann"
        await mine.read(bobs_key)                # None: not ann's
    """

    def __init__(self, inner: AsyncStore[T], policy: Policy, principal: Principal) -> None:
        super().__init__(inner)
        self._apply_policy(policy, principal)

    async def outside_rules(self, filter: Filter, action: str = "read") -> bool:
        """Whether any item matching ``filter`` is one this principal may not read or, for
        ``action`` ``"update"``/``"delete"``, not change that way. The relations layer asks
        this before a delete rule touches referring items: it refuses the delete instead of
        reaching (or counting) items outside the principal's rules.

        Example::

            mine = secured(notes, Policy.owner("owner"), Principal("ann"))
            assert await mine.outside_rules(F.owner.in_(["ann", "bob"]), "delete")  # bob's
            assert not await mine.outside_rules(F.owner == "ann")
        """
        allowed = self.rules.read
        if action == "delete":
            allowed = And.of(allowed, self.rules.delete)
        elif action == "update":
            allowed = And.of(allowed, self.rules.update)
        scope = And.of(validate_filter(filter, self.meta), ~allowed)
        if scope is NONE:
            return False
        return await self.inner.count(scope) > 0

    # ---- reads --------------------------------------------------------------------------

    async def read(self, key: str) -> T | None:
        return self._shown(await self.inner.read(key))

    async def read_batch(self, keys: Sequence[str]) -> list[T | None]:
        return [self._shown(i) for i in await self.inner.read_batch(keys)]

    async def search(
        self,
        filter: Filter | None = None,
        order: OrderArg = None,
        limit: int | None = None,
        page_key: str | None = None,
    ) -> Page[T]:
        f = And.of(self._filter(filter), self.rules.read)
        self._order(order)
        page = await self.inner.search(f, order, limit, page_key)
        return Page([self._mask(i) for i in page.items], page.next_page_key)

    async def count(self, filter: Filter | None = None) -> int:
        return await self.inner.count(And.of(self._filter(filter), self.rules.read))

    async def explain(self, filter: Filter | None = None, order: OrderArg = None) -> Explain:
        self._order(order)
        return await self.inner.explain(And.of(self._filter(filter), self.rules.read), order)

    # ---- writes -------------------------------------------------------------------------

    async def create(self, item: T) -> T:
        return self._mask(await self.inner.create(self._for_create(item)))

    async def put(self, item: T, *, if_match: str | None = None) -> T:
        # made of this layer's read, create and update, so their rules apply to it
        return await put_through_async(self, item, if_match)  # type: ignore[no-any-return]

    async def update(
        self, item: T, *, if_match: str | None = None, precondition: Filter | None = None
    ) -> T:
        item = self._as_item(item)
        pre = None if precondition is None else self._filter(precondition, "precondition")
        key = self.meta.key_of(item)
        for _ in attempts():
            current = self._check_before(
                await self.inner.read(key), key, self._can_update, "update", if_match, pre
            )
            new = self._for_update(item, current)
            after = prepare_update(self.meta, new, current, datetime.now(UTC))
            if not self._can_update(after):
                raise self._forbidden("update")
            try:
                return self._mask(await self.inner.update(new, if_match=etag(current)))
            except PreconditionFailed:
                if if_match is not None:
                    raise
            except NotFound:
                raise self._missing(key) from None
        raise lost_too_often()

    async def patch(
        self,
        key: str,
        changes: Mapping[str, Any],
        *,
        if_match: str | None = None,
        precondition: Filter | None = None,
    ) -> T:
        changes = check_changes(self.meta, changes)
        self._check_writable(patched_attrs(changes))
        pre = None if precondition is None else self._filter(precondition, "precondition")
        for _ in attempts():
            current = self._check_before(
                await self.inner.read(key), key, self._can_update, "update", if_match, pre
            )
            after = prepare_patch(self.meta, current, changes, datetime.now(UTC))
            if not self._can_update(after):
                raise self._forbidden("update")
            try:
                return self._mask(await self.inner.patch(key, changes, if_match=etag(current)))
            except PreconditionFailed:
                if if_match is not None:
                    raise
            except NotFound:
                raise self._missing(key) from None
        raise lost_too_often()

    async def delete(
        self, key: str, *, if_match: str | None = None, precondition: Filter | None = None
    ) -> None:
        pre = None if precondition is None else self._filter(precondition, "precondition")
        for _ in attempts():
            current = self._check_before(
                await self.inner.read(key), key, self._can_delete, "delete", if_match, pre
            )
            try:
                await self.inner.delete(key, if_match=etag(current))
                return
            except PreconditionFailed:
                if if_match is not None:
                    raise
            except NotFound:
                raise self._missing(key) from None
        raise lost_too_often()

    # ---- batches ------------------------------------------------------------------------

    async def edit_batch(self, edits: Sequence[Edit], atomic: bool = True) -> list[EditResult[T]]:
        edits = await resolve_puts_async(self, edits)
        results: list[EditResult[T] | None] = [None] * len(edits)
        pending = list(range(len(edits)))
        for _ in attempts():
            retry = await self._try_batch(edits, pending, results, atomic)
            if not retry:
                return [r for r in results if r is not None]
            pending = list(range(len(edits))) if atomic else retry
        raise lost_too_often()

    def _edit_key(self, e: Edit) -> str | None:
        try:
            if e.kind == EditKind.UPDATE:
                return self.meta.key_of(self._as_item(e.item))
            if e.kind in (EditKind.PATCH, EditKind.DELETE):
                return self.meta.key_string(self.meta.parse_key(e.key))
        except (ValidationError, TypeError, AttributeError):
            return None
        return None

    async def _try_batch(
        self, edits: list[Edit], todo: list[int], results: list[EditResult[T] | None], atomic: bool
    ) -> list[int]:
        """Check and send the edits ``todo``; return those to try again (our own etag went
        stale under a concurrent write)."""
        keys = [k for k in (self._edit_key(edits[i]) for i in todo) if k is not None]
        uniq = list(dict.fromkeys(keys))
        state: dict[str, Any] = dict(zip(uniq, await self.inner.read_batch(uniq), strict=True))
        seen: set[str] = set()
        sent: list[tuple[int, Edit, bool]] = []  # index, edit for inner, etag added by us
        errors: dict[int, PersistyError] = {}
        now = datetime.now(UTC)
        for i in todo:
            e = edits[i]
            try:
                if not isinstance(e, Edit):
                    raise ValidationError(f"not an Edit: {e!r}")
                edit, ours = self._translate(e, state, seen, now)
                sent.append((i, edit, ours))
            except PersistyError as problem:
                errors[i] = problem
        if atomic and errors:
            for i in todo:
                failed = errors.get(i)
                if failed is not None:
                    results[i] = EditResult(
                        edits[i], False, failed.code, None, failed.message, failed.field
                    )
                else:
                    results[i] = EditResult(
                        edits[i],
                        False,
                        "aborted",
                        None,
                        "not applied: another edit in the batch failed",
                    )
            return []
        for i, failed in errors.items():
            results[i] = EditResult(
                edits[i], False, failed.code, None, failed.message, failed.field
            )
        if not sent:
            return []
        answers = await self.inner.edit_batch([e for _, e, _ in sent], atomic)
        retry: list[int] = []
        for (i, _, ours), r in zip(sent, answers, strict=True):
            if not r.ok and r.code == "precondition_failed" and ours:
                retry.append(i)
            item = None if r.item is None else self._mask(r.item)
            results[i] = EditResult(edits[i], r.ok, r.code, item, r.message, r.field)
        return retry

    def _translate(
        self, e: Edit, state: dict[str, Any], seen: set[str], now: datetime
    ) -> tuple[Edit, bool]:
        """The edit to send for ``e``, checked against the policy and the current state."""
        if e.kind == EditKind.CREATE:
            item = self._for_create(e.item)
            created = self.meta.key_of(item)
            if state.get(created) is not None:
                raise Conflict(f"{self.meta.name} {created!r} already exists")
            state[created] = prepare_create(self.meta, item, now, self._sequences)
            seen.add(created)  # later edits of it follow from the create, not from a stored etag
            return Edit.create(item), False
        key = self._edit_key(e)
        if key is None:  # let the inner store report the bad key or item
            if e.kind == EditKind.UPDATE:
                self._as_item(e.item)
            self.meta.parse_key(e.key)
            raise ValidationError("invalid key")
        pre = None if e.precondition is None else self._filter(e.precondition, "precondition")
        can = self._can_delete if e.kind == EditKind.DELETE else self._can_update
        action = "delete" if e.kind == EditKind.DELETE else "update"
        first = key not in seen
        seen.add(key)
        current = self._check_before(
            state.get(key), key, can, action, e.if_match if first else None, pre
        )
        guard = And.of(
            self.rules.read, self.rules.delete if e.kind == EditKind.DELETE else self.rules.update
        )
        if pre is not None:
            guard = And.of(pre, guard)
        # the first edit of a key is pinned to the state we checked; later edits of the same
        # key in this batch follow from it (and the user's own etag, if any, is passed on)
        if_match = etag(current) if first else e.if_match
        ours = first
        if e.kind == EditKind.DELETE:
            state[key] = None
            return Edit.delete(key, if_match=if_match, precondition=guard), ours
        if e.kind == EditKind.UPDATE:
            new = self._for_update(self._as_item(e.item), current)
            after = prepare_update(self.meta, new, current, now)
            sent = Edit.update(new, if_match=if_match, precondition=guard)
        else:
            changes = check_changes(self.meta, e.changes or {})
            self._check_writable(patched_attrs(changes))
            after = prepare_patch(self.meta, current, changes, now)
            sent = Edit.patch(key, changes, if_match=if_match, precondition=guard)
        if not self._can_update(after):
            raise self._forbidden("update")
        state[key] = after
        return sent, ours

    async def update_all(self, filter: Filter | None, changes: Mapping[str, Any]) -> int:
        changes = check_changes(self.meta, changes)
        self._check_writable(patched_attrs(changes))
        f = self._filter(filter)
        if f is NONE:
            return 0
        scope = And.of(f, self.rules.read, self.rules.update)
        now = datetime.now(UTC)
        keys = []
        async for item in self.inner.search_all(scope):
            if not self._can_update(prepare_patch(self.meta, item, changes, now)):
                raise self._forbidden("update")
            keys.append(self.meta.key_of(item))
        return await patch_keys_async(self, keys, changes, f)

    async def delete_all(self, filter: Filter | None) -> int:
        f = self._filter(filter)
        if f is NONE:
            return 0
        return await self.inner.delete_all(And.of(f, self.rules.read, self.rules.delete))
