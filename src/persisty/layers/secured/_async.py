"""The access-control layer (async): a Store as one principal may see and change it.

The sync twin ``persisty/layers/secured/_sync.py`` is generated from this file by
``scripts/generate_sync.py``; edit this file, never the twin.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from persisty.errors import (
    Conflict,
    Forbidden,
    NotFound,
    PersistyError,
    PreconditionFailed,
    ValidationError,
)
from persisty.layers.secured._policy import Policy, Principal
from persisty.model import etag
from persisty.query import (
    NONE,
    And,
    Compare,
    Filter,
    Not,
    Op,
    Or,
    Order,
    TextQuery,
    attrs_of,
    compile_filter,
    validate_filter,
)
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

MAX_RETRIES = 20


class AsyncSecuredStore(AsyncWrappedStore[T]):
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
        self.policy = policy
        self.principal = principal
        rules = policy.rules(principal).validated(self.meta)
        self.rules = rules
        self._can_read = compile_filter(rules.read, self.meta)
        self._can_create = compile_filter(rules.create, self.meta)
        self._can_update = compile_filter(rules.update, self.meta)
        self._can_delete = compile_filter(rules.delete, self.meta)
        self._sequences = {a.name: 0 for a in self.meta.attrs if a.generated == "sequence"}
        names = [a.name for a in self.meta.attrs]
        keys = set(self.meta.key.attrs)
        # hidden: what the policy does not let this principal read, and what the model
        # declares unreadable (Attr(readable=False)); the key always stays readable
        self._hidden = [
            n
            for n in names
            if n not in keys
            and (
                (rules.readable is not None and n not in rules.readable)
                or not self.meta.by_name[n].readable
            )
        ]
        self.hidden: frozenset[str] = frozenset(self._hidden)
        self.locked: frozenset[str] = frozenset(self._locked_names(rules, names))
        self._text_attrs = tuple(
            a.name for a in self.meta.attrs if a.kind == "str" and a.name not in self.hidden
        )
        self._locked = self._locked_names(rules, names)

    # ---- helpers ------------------------------------------------------------------------

    @staticmethod
    def _locked_names(rules: Any, names: list[str]) -> list[str]:
        return (
            []
            if rules.writable is None
            else [n for n in names if n not in rules.writable and n not in rules.forced]
        )

    def _mask(self, item: T) -> T:
        if not self._hidden:
            return item
        return dataclasses.replace(item, **dict.fromkeys(self._hidden))  # type: ignore[type-var]

    def _shown(self, item: T | None) -> T | None:
        if item is None or not self._can_read(item):
            return None
        return self._mask(item)

    def _filter(self, f: Filter | None, what: str = "filter") -> Filter:
        """``f`` validated, refusing attributes the principal may not read; free text
        searches only the string attributes it may read."""
        v = validate_filter(f, self.meta)
        for name in sorted(attrs_of(v)):
            if name in self.hidden:
                raise Forbidden(
                    f"{name} is not readable, so it cannot be used in a {what}", field=name
                )
        if self.hidden:
            v = self._readable_text(v)
        return v

    def _readable_text(self, f: Filter) -> Filter:
        if isinstance(f, TextQuery):
            return Or.of(*(Compare(a, Op.ICONTAINS, f.text) for a in self._text_attrs))
        if isinstance(f, And):
            return And.of(*(self._readable_text(x) for x in f.filters))
        if isinstance(f, Or):
            return Or.of(*(self._readable_text(x) for x in f.filters))
        if isinstance(f, Not):
            return ~self._readable_text(f.filter)
        return f

    def _order(self, order: OrderArg) -> None:
        for o in Order.parse(order):
            if o.attr in self.hidden:
                raise Forbidden(
                    f"{o.attr} is not readable, so it cannot be used in an order", field=o.attr
                )

    def _missing(self, key: str) -> NotFound:
        return NotFound(f"no {self.meta.name} with key {key!r}")

    def _forbidden(self, action: str) -> Forbidden:
        return Forbidden(f"{self.principal.subject} may not {action} this {self.meta.name}")

    def _check_writable(self, names: Sequence[str]) -> None:
        for name in names:
            if name in self._locked:
                raise Forbidden(f"{name} is not writable", field=name)

    def _as_item(self, item: Any) -> Any:
        if isinstance(item, Mapping):
            return self.meta.from_builtins(item)
        if not isinstance(item, self.meta.cls):
            raise ValidationError(f"expected a {self.meta.cls.__name__}, got {type(item).__name__}")
        return item

    def _for_create(self, item: Any) -> Any:
        """The item to create: checked against the policy, forced values filled in where
        absent (a different value is refused)."""
        defaults = _defaults(self.meta.cls)
        forced = self.rules.forced
        if forced and isinstance(item, Mapping):
            for name, value in forced.items():
                if (
                    name in item
                    and item[name] is not None
                    and (self.meta.attr(name).coerce(item[name]) != value)
                ):
                    raise Forbidden(
                        f"{name} is set by the access policy; it cannot be {item[name]!r}",
                        field=name,
                    )
            item = {**item, **forced}
        item = self._as_item(item)
        for name, value in forced.items():
            given = getattr(item, name)
            if given is None or given == value:
                continue
            d = defaults.get(name, dataclasses.MISSING)
            if d is not dataclasses.MISSING and given == (d() if callable(d) else d):
                continue  # left at its default: filled in below
            raise Forbidden(
                f"{name} is set by the access policy; it cannot be {given!r}", field=name
            )
        keys = self.meta.key.attrs
        for a in self.meta.attrs:  # a locked attribute keeps its default (the key is free)
            if (
                a.name in self._locked
                and a.generated is None
                and a.name in defaults
                and (a.name not in keys)
            ):
                d = defaults[a.name]
                if getattr(item, a.name) != (d() if callable(d) else d):
                    raise Forbidden(f"{a.name} is not writable", field=a.name)
        if self.rules.forced:
            item = dataclasses.replace(item, **self.rules.forced)
        # check the item as it will be stored (generated values filled in, validated)
        checked = prepare_create(self.meta, item, datetime.now(UTC), self._sequences)
        if not self._can_create(checked):
            raise self._forbidden("create")
        return item

    def _check_before(
        self,
        current: T | None,
        key: str,
        can: Any,
        action: str,
        if_match: str | None,
        precondition: Filter | None,
    ) -> T:
        if current is None or not self._can_read(current):
            raise self._missing(key)
        if not can(current):
            raise self._forbidden(action)
        if if_match is not None and if_match != etag(self._mask(current)):
            raise PreconditionFailed("the item has changed (etag does not match)")
        if precondition is not None and not compile_filter(precondition, self.meta)(current):
            raise PreconditionFailed("the precondition does not hold")
        return current

    def _for_update(self, item: Any, current: T) -> Any:
        """``item`` with what the principal may not set taken from ``current``."""
        keep = {n: getattr(current, n) for n in self._locked}
        for n in self._hidden:
            if getattr(item, n) is None:
                keep[n] = getattr(current, n)
        return dataclasses.replace(item, **keep) if keep else item

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

    async def update(
        self, item: T, *, if_match: str | None = None, precondition: Filter | None = None
    ) -> T:
        item = self._as_item(item)
        pre = None if precondition is None else self._filter(precondition, "precondition")
        key = self.meta.key_of(item)
        for _ in range(MAX_RETRIES):
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
        raise Conflict("too many concurrent changes; try again")

    async def put(self, item: T, *, if_match: str | None = None) -> T:
        # made of this layer's read, create and update, so their rules apply to it
        return await put_through_async(self, item, if_match)  # type: ignore[no-any-return]

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
        for _ in range(MAX_RETRIES):
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
        raise Conflict("too many concurrent changes; try again")

    async def delete(
        self, key: str, *, if_match: str | None = None, precondition: Filter | None = None
    ) -> None:
        pre = None if precondition is None else self._filter(precondition, "precondition")
        for _ in range(MAX_RETRIES):
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
        raise Conflict("too many concurrent changes; try again")

    # ---- batches ------------------------------------------------------------------------

    async def edit_batch(self, edits: Sequence[Edit], atomic: bool = True) -> list[EditResult[T]]:
        edits = await resolve_puts_async(self, edits)
        results: list[EditResult[T] | None] = [None] * len(edits)
        pending = list(range(len(edits)))
        for _ in range(MAX_RETRIES):
            retry = await self._try_batch(edits, pending, results, atomic)
            if not retry:
                return [r for r in results if r is not None]
            pending = list(range(len(edits))) if atomic else retry
        raise Conflict("too many concurrent changes; try again")

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


def _defaults(cls: type[Any]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            result[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            result[f.name] = f.default_factory
    return result
