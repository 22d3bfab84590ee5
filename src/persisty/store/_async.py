"""The Store contract (async), the base class backends build on, and the Database.

The sync twin ``_sync.py`` is generated from this file by ``scripts/generate-sync``;
edit this file, never the twin.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import random
import re
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar, runtime_checkable

from persisty.errors import (
    Conflict,
    NotFound,
    PersistyError,
    PreconditionFailed,
    ValidationError,
)
from persisty.model import StoreMeta, etag, meta_of, parse_path
from persisty.model._meta import etags_of
from persisty.query import (
    ALL,
    NONE,
    And,
    Compare,
    F,
    Filter,
    Op,
    Or,
    Order,
    PageKeys,
    Sort,
    compile_filter,
    sort_spec,
    sort_values,
    validate_filter,
)
from persisty.store._commit_async import commit_edits, commit_one_store
from persisty.store._prepare import (
    as_item,
    check_changes,
    prepare_create,
    prepare_creates,
    prepare_patch,
    prepare_update,
)
from persisty.store._types import (
    Clock,
    Edit,
    EditKind,
    EditResult,
    Explain,
    Insert,
    Key,
    Page,
    Remove,
    Replace,
    WriteOp,
)

if TYPE_CHECKING:
    from persisty.files import AsyncFileStore

T = TypeVar("T")
OrderArg = Iterable[Order | str] | Order | str | None

DEFAULT_LIMIT = 100
MAX_RETRIES = 100
PURGE_EVERY = 100
PURGE_LIMIT = 100


class AsyncStore(ABC, Generic[T]):
    """The one contract: every backend and every layer is a Store.

    Keys are strings (``key_of(item)``). ``read`` returns ``None`` for a missing key;
    ``update``/``patch``/``delete`` raise ``NotFound``. ``if_match`` (an etag) and
    ``precondition`` (a filter the stored item must match) are checked atomically with the
    write and raise ``PreconditionFailed`` when they do not hold; nothing is written then.
    A ``filter`` of ``None`` means every item. Pages are ordered by ``order`` with ties
    broken by key, and a page key continues exactly after the last item of its page.

    Example::

        notes = db.store(Note)
        n = await notes.create(Note(owner="ann", title="Hello"))
        page = await notes.search(F.owner == "ann", order=[-F.priority], limit=20)
    """

    meta: StoreMeta

    def key_of(self, item: T) -> str:
        """The key string of ``item``."""
        return self.meta.key_of(item)

    @abstractmethod
    async def create(self, item: T) -> T:
        """Store a new item and return it as stored (generated values filled in).

        Raises ``Conflict`` if the key or a unique index value is taken,
        ``ValidationError`` (naming the field) for a bad value.
        """

    @abstractmethod
    async def read(self, key: str) -> T | None:
        """The item with ``key``, or ``None``."""

    @abstractmethod
    async def update(
        self, item: T, *, if_match: str | None = None, precondition: Filter | None = None
    ) -> T:
        """Replace the stored item that has ``item``'s key; return what was stored."""

    async def put(self, item: T, *, if_match: str | None = None) -> T:
        """Create ``item``, or replace the stored item with its key (an upsert); return what
        was stored. Generated attributes behave as on ``create`` for a new item and as on
        ``update`` for an existing one. With ``if_match`` the item must exist with that etag
        (else ``PreconditionFailed``). Backends do it in one atomic engine operation; this
        default (for layers) reads, then creates or updates with the etag it read, retrying
        when a concurrent write gets in between, so no write is lost.

        Example::

            await notes.put(Note(id=n.id, owner="ann", title="Hi"))   # new or not, now it is this
        """
        return await put_through(self, item, if_match)  # type: ignore[no-any-return]

    @abstractmethod
    async def patch(
        self,
        key: str,
        changes: Mapping[str, Any],
        *,
        if_match: str | None = None,
        precondition: Filter | None = None,
    ) -> T:
        """Change the named attributes of the item with ``key``; return what was stored.

        A value may be ``Increment(n)``: the engine adds ``n`` to the stored number
        atomically (``patch(key, {"hits": Increment(1)})``); a missing value counts as 0.
        """

    async def read_path(self, key: str, path: str) -> Any:
        """The value at ``path`` (``location.city``, ``items[3].x``, JSON Pointer
        ``/extra/a.b``) of the item with ``key``, typed as declared; ``NotFound`` when the
        item is missing, ``ValidationError`` for a path the model does not have, ``None``
        past a ``None``.

        Example::

            await notes.write_path(key, "address", {"street": "Main St 1", "city": "Osaka"})
            assert await notes.read_path(key, "address.city") == "Osaka"
        """
        p = parse_path(self.meta, path)
        item = await self.read(key)
        if item is None:
            raise NotFound(f"no {self.meta.name} with key {key!r}")
        return p.get(item)

    async def write_path(
        self,
        key: str,
        path: str,
        value: Any,
        *,
        if_match: str | None = None,
        precondition: Filter | None = None,
    ) -> T:
        """Set the value at ``path`` of the item with ``key`` (coerced to the declared type)
        and return the new item: one conditional write, tried again when the item changed
        in between (as ``patch``, which takes paths too), so concurrent writes to other
        paths of the item are never lost.

        Example::

            placed = await notes.write_path(key, "address", {"street": "Main", "city": "Osaka"})
            moved = await notes.write_path(key, "address.city", "Tokyo", if_match=etag(placed))
            assert moved.address.city == "Tokyo" and moved.address.street == "Main"
        """
        return await self.patch(key, {path: value}, if_match=if_match, precondition=precondition)

    @abstractmethod
    async def delete(
        self, key: str, *, if_match: str | None = None, precondition: Filter | None = None
    ) -> None:
        """Delete the item with ``key``."""

    @abstractmethod
    async def search(
        self,
        filter: Filter | None = None,
        order: OrderArg = None,
        limit: int | None = None,
        page_key: str | None = None,
    ) -> Page[T]:
        """One page of the items matching ``filter`` in ``order``."""

    async def search_all(
        self, filter: Filter | None = None, order: OrderArg = None, page_size: int = 500
    ) -> AsyncIterator[T]:
        """Every item matching ``filter`` in ``order``, fetched a page at a time."""
        page_key: str | None = None
        while True:
            page = await self.search(filter, order, limit=page_size, page_key=page_key)
            for item in page.items:
                yield item
            if page.next_page_key is None:
                return
            page_key = page.next_page_key

    @abstractmethod
    async def count(self, filter: Filter | None = None) -> int:
        """How many items match ``filter``."""

    @abstractmethod
    async def read_batch(self, keys: Sequence[str]) -> list[T | None]:
        """The items for ``keys``, in order, ``None`` where a key is missing."""

    @abstractmethod
    async def edit_batch(self, edits: Sequence[Edit], atomic: bool = True) -> list[EditResult[T]]:
        """Apply ``edits`` in order. ``atomic=True``: all or nothing (the failing edit has
        its code, the others ``aborted``); ``atomic=False``: each on its own."""

    @abstractmethod
    async def update_all(self, filter: Filter | None, changes: Mapping[str, Any]) -> int:
        """Apply ``changes`` to every item matching ``filter``; return how many changed."""

    @abstractmethod
    async def delete_all(self, filter: Filter | None) -> int:
        """Delete every item matching ``filter``; return how many were deleted."""

    @abstractmethod
    async def explain(self, filter: Filter | None = None, order: OrderArg = None) -> Explain:
        """Which part of ``filter`` (and ``order``) runs on the engine, which in Python."""

    async def purge_expired(self, limit: int | None = None) -> int:
        """Delete (at most ``limit``) expired items now; return how many were deleted.

        Expired items are invisible already; this frees their storage. Engines that expire
        items themselves (Redis, DynamoDB) do it natively; on the others every 100th write
        of an expiring store purges up to 100. A store without ``Attr(expires=True)``
        has nothing to purge.

        Example::

            await notes.purge_expired()   # 0: a Note never expires
        """
        return 0


class AsyncStoreBase(AsyncStore[T]):
    """The Store logic every backend shares; a backend implements the ``_`` hooks only.

    Hooks: ``_get`` (item and stored etag), ``_commit`` (apply write ops, all or nothing
    when ``atomic``), ``_find`` (natively filtered, sorted, after a position, limited),
    and optionally ``_get_many``, ``_count``, ``_plan`` (split a filter into native and
    residual parts), ``_describe`` and ``_next_sequence``.

    Expiry: when the model has an ``Attr(expires=True)`` attribute, an item whose expiry is
    at or before ``self.clock()`` is treated as absent by every method (the hooks still
    return it; this class filters), and creating its key again replaces it. ``clock`` is
    the database's :class:`Clock` (``db.clock``), which tests may set.
    """

    def __init__(
        self,
        meta: StoreMeta,
        pages: PageKeys,
        *,
        clock: Clock | None = None,
        default_limit: int = DEFAULT_LIMIT,
    ) -> None:
        self.meta = meta
        self.pages = pages
        self.clock = clock or Clock()
        self.default_limit = default_limit
        self.retries = 0
        self._writes = 0
        """How often a write was tried again because the item changed between the read and
        the conditional write (native atomic paths never need to)."""

    # ---- hooks --------------------------------------------------------------------------

    @abstractmethod
    async def _get(self, key: Key) -> tuple[T, str] | None:
        """The stored item with ``key`` and its etag, or ``None``."""

    async def _get_many(self, keys: Sequence[Key]) -> list[tuple[T, str] | None]:
        return [await self._get(k) for k in keys]

    @abstractmethod
    async def _commit(self, ops: Sequence[WriteOp], atomic: bool) -> list[PersistyError | None]:
        """Apply ``ops`` in order, returning one error (or ``None``) per op; when ``atomic``
        and any op fails, none is applied (ops after the first failure may be left ``None``)."""

    @abstractmethod
    async def _find(
        self, native: Filter, spec: Sort, after: Sequence[Any] | None, limit: int | None
    ) -> list[T]:
        """Items matching ``native`` sorted by ``spec``, strictly after the position
        ``after`` (values for each term of ``spec``), at most ``limit``."""

    async def _count(self, native: Filter) -> int:
        return len(await self._find(native, sort_spec(self.meta, None), None, None))

    def _plan(self, f: Filter) -> tuple[Filter, Filter]:
        """Split a validated filter into (native, residual); ``native & residual == f``."""
        return f, ALL

    def _describe(self, native: Filter, spec: Sort) -> str:
        return f"native: {native!r}"

    async def _next_sequence(self, attr: str) -> int:
        raise ValidationError(f"{attr}: this backend does not generate sequences", field=attr)

    async def _skip_sequence(self, attr: str, by: int) -> None:
        """Advance the sequence ``attr`` by ``by`` numbers at once (a restore of items that
        hold larger values); backends override it with one atomic add."""
        for _ in range(by):
            await self._next_sequence(attr)

    async def _advance_sequences(self, items: Sequence[Any]) -> None:
        """After a restore: every sequence gives numbers above those ``items`` hold, so a
        later create never reuses one (a counter only grows, concurrent creates included)."""
        for attr in self.meta.sequence_attrs:
            held = [v for i in items if isinstance(v := getattr(i, attr, None), int)]
            if not held:
                continue
            at = await self._next_sequence(attr)  # one number is skipped: gaps are allowed
            if at < max(held):
                await self._skip_sequence(attr, max(held) - at)

    # ---- helpers ------------------------------------------------------------------------

    async def _sequences(self) -> dict[str, int] | None:
        names = self.meta.sequence_attrs
        if not names:
            return None
        return {n: await self._next_sequence(n) for n in names}

    def _check(
        self, stored: tuple[T, str], if_match: str | None, precondition: Filter | None
    ) -> None:
        item, tag = stored
        if if_match is not None and if_match != tag:
            raise PreconditionFailed("the item has changed (etag does not match)")
        if precondition is not None and not compile_filter(
            validate_filter(precondition, self.meta), self.meta
        )(item):
            raise PreconditionFailed("the precondition does not hold")

    def _expired(self, item: Any, now: Any = None) -> bool:
        """Whether ``item`` has expired (always false for a model without expiry)."""
        name = self.meta.expires
        if name is None:
            return False
        at = getattr(item, name)
        return at is not None and at <= (now or self.clock())

    @property
    def _expiry_indexed(self) -> bool:
        """Whether an index holds the expiry attribute (so the expired items of a filter on
        the attributes before it are a range)."""
        name = self.meta.expires
        return name is not None and any(name in ix.attrs for ix in self.meta.indexes)

    def _live(self, f: Filter) -> Filter:
        """``f`` restricted to the items that have not expired (validated)."""
        name = self.meta.expires
        if name is None or f is NONE:
            return f
        now = self.clock()
        if type(now) is dt.datetime and now.tzinfo is not None:
            # built as validation builds it (the clock's aware instant needs no coercion):
            # validating a new instant on every count or search was most of a count's cost,
            # and filled the validated-filter cache with filters never seen again
            alive: Filter = Or((Compare(name, Op.EQ, None), Compare(name, Op.GT, now)))
            return alive if f is ALL else And.of(f, alive)
        alive = (F[name] == None) | (F[name] > now)  # noqa: E711
        return validate_filter(alive if f is ALL else f & alive, self.meta)

    async def _get_live(self, key: Key) -> tuple[tuple[T, str] | None, str | None]:
        """The live stored item with ``key`` (or ``None``), and the etag of an expired item
        that still occupies the key (or ``None``)."""
        found = await self._get(key)
        if found is not None and self._expired(found[0]):
            return None, found[1]
        return found, None

    async def _commit_one(self, op: WriteOp) -> None:
        err = (await self._commit([op], True))[0]
        if err is not None:
            raise err
        if self.meta.expires is not None and not self.reclaims_natively:
            self._writes += 1
            if self._writes >= PURGE_EVERY:  # the storage of expired items, a bit at a time
                self._writes = 0
                await self.purge_expired(PURGE_LIMIT)

    opened_by: AsyncDatabase | None = None
    """The database that opened this store (``db.store(cls)``), else ``None``."""

    reclaims_natively = False
    """Whether the engine deletes expired items itself (Redis, DynamoDB); else every
    ``PURGE_EVERY`` writes of an expiring store purge up to ``PURGE_LIMIT`` of them."""

    async def purge_expired(self, limit: int | None = None) -> int:
        name = self.meta.expires
        if name is None:
            return 0
        f = validate_filter(F[name] <= self.clock(), self.meta)
        found = await self._collect(f, sort_spec(self.meta, None), None, limit)
        ops: list[WriteOp] = [Remove(self.meta.key_values(i), etag(i), i) for i in found]
        if not ops:
            return 0
        return sum(1 for err in await self._commit(ops, False) if err is None)

    # ---- the contract -------------------------------------------------------------------

    async def create(self, item: T) -> T:
        new = prepare_create(self.meta, item, self.clock(), await self._sequences())
        key = self.meta.key_values(new)
        tag = etag(new)
        try:
            await self._commit_one(Insert(key, new, tag))
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

    async def read(self, key: str) -> T | None:
        found = await self._get(self.meta.parse_key(key))
        if found is None or (self.meta.expires is not None and self._expired(found[0])):
            return None
        return found[0]

    async def update(
        self, item: T, *, if_match: str | None = None, precondition: Filter | None = None
    ) -> T:
        if not isinstance(item, self.meta.cls):
            item = self.meta.from_builtins(item)
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
        if if_match is None and precondition is None and self.meta.expires is None:
            await self._commit_one(Remove(k))
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

    def _prepare_search(
        self, filter: Filter | None, order: OrderArg, page_key: str | None
    ) -> tuple[Filter, Sort, tuple[Any, ...] | None]:
        f = validate_filter(filter, self.meta)
        if self.meta.expires is not None:
            f = self._live(f)
        spec = sort_spec(self.meta, order)
        after = None if page_key is None else self.pages.decode(page_key, self.meta, spec)
        return f, spec, after

    async def search(
        self,
        filter: Filter | None = None,
        order: OrderArg = None,
        limit: int | None = None,
        page_key: str | None = None,
    ) -> Page[T]:
        f, spec, after = self._prepare_search(filter, order, page_key)
        if limit is None:
            limit = self.default_limit
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
            raise ValidationError("limit must be a positive integer", field="limit")
        if f is NONE:
            return Page([], None)
        items = await self._collect(f, spec, after, limit + 1)
        if len(items) > limit:
            items = items[:limit]
            return Page(items, self.pages.encode(self.meta, spec, sort_values(items[-1], spec)))
        return Page(items, None)

    async def _collect(
        self, f: Filter, spec: Sort, after: Sequence[Any] | None, limit: int | None
    ) -> list[T]:
        native, residual = self._plan(f)
        if residual is ALL:
            return await self._find(native, spec, after, limit)
        keep = compile_filter(residual, self.meta)
        chunk = max(100, 4 * (limit or 0)) if limit is not None else None
        result: list[T] = []
        while True:
            raw = await self._find(native, spec, after, chunk)
            result.extend(i for i in raw if keep(i))
            if chunk is None or len(raw) < chunk:
                break
            if limit is not None and len(result) >= limit:
                break
            after = sort_values(raw[-1], spec)
        return result if limit is None else result[:limit]

    async def count(self, filter: Filter | None = None) -> int:
        f = validate_filter(filter, self.meta)
        if self.meta.expires is not None:
            now = self.clock()
            if self._expiry_indexed and f is not NONE and type(now) is dt.datetime and now.tzinfo:
                # the matching items less the expired ones still stored: a count of ``f``
                # and one of an index range, instead of testing every row's expiry
                expired = And.of(f, Compare(self.meta.expires, Op.LTE, now))
                native, residual = self._plan(f)
                native_expired, residual_expired = self._plan(expired)
                if residual is ALL and residual_expired is ALL:
                    total = await self._count(native)
                    return max(0, total - await self._count(native_expired))
            f = self._live(f)
        if f is NONE:
            return 0
        native, residual = self._plan(f)
        if residual is ALL:
            return await self._count(native)
        return len(await self._collect(f, sort_spec(self.meta, None), None, None))

    async def read_batch(self, keys: Sequence[str]) -> list[T | None]:
        if isinstance(keys, str):
            raise ValidationError("read_batch takes a list of keys")
        parsed = [self.meta.parse_key(k) for k in keys]
        found = await self._get_many(parsed)
        if self.meta.expires is not None:
            now = self.clock()
            return [None if f is None or self._expired(f[0], now) else f[0] for f in found]
        return [None if f is None else f[0] for f in found]

    async def explain(self, filter: Filter | None = None, order: OrderArg = None) -> Explain:
        f, spec, _ = self._prepare_search(filter, order, None)
        native, residual = self._plan(f)
        return Explain(native, residual, True, self._describe(native, spec))

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
        failed = any(err is not None for err in errors)
        results: list[EditResult[T]] = []
        for e, op, err in zip(edits, ops, errors, strict=True):
            if err is not None:
                results.append(EditResult(e, False, err.code, None, err.message, err.field))
            elif atomic and failed:
                results.append(
                    EditResult(
                        e, False, "aborted", None, "not applied: another edit in the batch failed"
                    )
                )
            else:
                item = op.item if isinstance(op, Insert | Replace) else getattr(op, "old", None)
                results.append(EditResult(e, True, None, item))
        return results

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


def _shape(meta: StoreMeta) -> dict[str, str]:
    """What a stored item is made of, attribute by attribute: ``str``, ``int | None``,
    ``list[str]``, ``str (key)`` …"""
    return {
        a.name: (f"list[{a.item_kind}]" if a.kind == "list" and a.item_kind else a.kind)
        + (" | None" if a.optional else "")
        + (" (key)" if a.name in meta.key.attrs else "")
        for a in meta.attrs
    }


def _check_same_shape(meta: StoreMeta, cls: type[Any], open_: Mapping[type[Any], Any]) -> None:
    """A store name is one shape in one database: another class of the same shape (a class
    declared again, as a notebook re-running a cell does) shares the store; a different one
    is refused, naming both classes and what differs."""
    for other_cls, store in open_.items():
        other = store.meta
        if other.name != meta.name or other_cls is cls:
            continue
        mine, theirs = _shape(meta), _shape(other)
        if mine == theirs and other.key.attrs == meta.key.attrs:
            continue  # the same shape: the same store
        differ = [
            f"{n}: {theirs.get(n, 'missing')} in {other_cls.__name__}, "
            f"{mine.get(n, 'missing')} in {cls.__name__}"
            for n in dict.fromkeys([*theirs, *mine])
            if theirs.get(n) != mine.get(n)
        ]
        if not differ:
            differ = [
                f"key {other.key.attrs} in {other_cls.__name__}, {meta.key.attrs} in {cls.__name__}"
            ]
        raise ValidationError(
            f"store {meta.name!r} is open in this database as {other_cls.__name__}; "
            f"{cls.__name__} has another shape ({'; '.join(differ)}): give one of them "
            "another name, or open the changed class with a new database object to migrate"
        )


async def _after_lost_race(attempt: int) -> None:
    """After a few lost races on one item, wait a random moment (growing, at most 50 ms) so
    writers contending for it spread out instead of colliding again in lockstep."""
    if attempt >= 2:
        await asyncio.sleep(random.uniform(0, min(0.05, 0.001 * 2**attempt)))


BULK_CHUNK = 100


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


class AsyncWrappedStore(AsyncStore[T]):
    """A layer: a Store that passes every call to ``inner``; override what the layer changes.

    Example::

        class Logged(AsyncWrappedStore[T]):
            async def create(self, item):
                print("create", item)
                return await self.inner.create(item)
    """

    def __init__(self, inner: AsyncStore[T]) -> None:
        self.inner = inner
        self.meta = inner.meta

    async def create(self, item: T) -> T:
        return await self.inner.create(item)

    async def read(self, key: str) -> T | None:
        return await self.inner.read(key)

    async def update(
        self, item: T, *, if_match: str | None = None, precondition: Filter | None = None
    ) -> T:
        return await self.inner.update(item, if_match=if_match, precondition=precondition)

    async def put(self, item: T, *, if_match: str | None = None) -> T:
        return await self.inner.put(item, if_match=if_match)

    async def patch(
        self,
        key: str,
        changes: Mapping[str, Any],
        *,
        if_match: str | None = None,
        precondition: Filter | None = None,
    ) -> T:
        return await self.inner.patch(key, changes, if_match=if_match, precondition=precondition)

    async def delete(
        self, key: str, *, if_match: str | None = None, precondition: Filter | None = None
    ) -> None:
        await self.inner.delete(key, if_match=if_match, precondition=precondition)

    async def search(
        self,
        filter: Filter | None = None,
        order: OrderArg = None,
        limit: int | None = None,
        page_key: str | None = None,
    ) -> Page[T]:
        return await self.inner.search(filter, order, limit, page_key)

    async def count(self, filter: Filter | None = None) -> int:
        return await self.inner.count(filter)

    async def read_batch(self, keys: Sequence[str]) -> list[T | None]:
        return await self.inner.read_batch(keys)

    async def edit_batch(self, edits: Sequence[Edit], atomic: bool = True) -> list[EditResult[T]]:
        return await self.inner.edit_batch(edits, atomic)

    async def update_all(self, filter: Filter | None, changes: Mapping[str, Any]) -> int:
        return await self.inner.update_all(filter, changes)

    async def delete_all(self, filter: Filter | None) -> int:
        return await self.inner.delete_all(filter)

    async def explain(self, filter: Filter | None = None, order: OrderArg = None) -> Explain:
        return await self.inner.explain(filter, order)

    async def purge_expired(self, limit: int | None = None) -> int:
        return await self.inner.purge_expired(limit)


@runtime_checkable
class AsyncOutbox(Protocol):
    """The changes a store's writes left in its transactional outbox, kept until they are
    delivered: what ``observed(store, outbox=True)`` delivers at least once.

    Example::

        store, outbox = sql_db.store(Note).with_outbox()
        with outbox.collecting() as ids:     # the ids of the changes written in the block
            await store.create(Note(title="x"))
        await outbox.done(ids)               # delivered: clear them
    """

    def collecting(self) -> AbstractContextManager[list[str]]:
        """Collect the ids of the changes written in this block (this task or thread)."""
        ...

    async def done(self, ids: Sequence[str]) -> None:
        """Forget delivered changes."""
        ...

    async def claim(self, limit: int = 100) -> list[tuple[str, str, str, Any, Any, dt.datetime]]:
        """Lease up to ``limit`` changes whose writer did not deliver them in time:
        ``(id, kind, key, old, new, at)``."""
        ...

    async def pending(self) -> int:
        """How many changes wait (leased or not)."""
        ...


@runtime_checkable
class AsyncOutboxSource(Protocol):
    """A store that can write each change to a transactional outbox with its write (the
    SQL stores)."""

    def with_outbox(self, lease: float = 30.0) -> tuple[AsyncStore[Any], AsyncOutbox]:
        """This store again, writing to the outbox, and the outbox; ``lease`` is how many
        seconds a writer has to deliver before another process may take a change over."""
        ...


_NAMESPACE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,39}$")


class AsyncDatabase(ABC):
    """A connection to one engine: hands out one Store per ``@stored`` class.

    ``namespace`` isolates the stores of one tenant from another's on the same engine.
    Page keys are signed with ``secret`` (else ``PERSISTY_SECRET``, else one the backend
    keeps, else a random one for this process). ``db.clock`` (a :class:`Clock`) is the time
    its stores write and expire items by.

    Example::

        db = persisty.aio.connect("memory://", namespace="tenant1")
        notes = db.store(Note)
    """

    def __init__(
        self, url: str, *, namespace: str | None = None, secret: bytes | str | None = None
    ) -> None:
        if namespace is not None and not _NAMESPACE.match(namespace):
            raise ValidationError(
                "a namespace is a letter then letters, digits or _ (at most 40)", field="namespace"
            )
        self.url = url
        self.namespace = namespace
        self.pages = PageKeys(
            secret or os.environ.get("PERSISTY_SECRET") or self._secret(),
            namespace=namespace,
            database=url,
        )
        self._stores: dict[type[Any], AsyncStore[Any]] = {}
        self.clock = Clock()
        """The clock every store of this database reads (timestamps, expiry); tests set
        ``db.clock.now`` (or pass ``connect(url, clock=Clock(...))``) to move time."""

    def _secret(self) -> bytes | None:
        """A secret the backend keeps for its database; ``None`` for a random one."""
        return None

    def store(self, cls: type[T]) -> AsyncStore[T]:
        """The Store for the ``@stored`` class ``cls`` (one per class per database)."""
        found = self._stores.get(cls)
        if found is None:
            meta = meta_of(cls)
            _check_same_shape(meta, cls, self._stores)
            found = self._stores[cls] = self._open(meta)
            if isinstance(found, AsyncStoreBase):
                found.clock = self.clock
                found.opened_by = self  # layers that write several stores commit through it
        return found

    def evolve(self, cls: type[T]) -> AsyncStore[T]:
        """The Store for ``cls``, a new version of a class already open under its store
        name (an attribute or an index added, a constraint relaxed): the earlier class is no
        longer served by this database, its items are read through ``cls``, and
        :meth:`migrate` brings the engine's schema up to it. What runtime-defined stores
        (``persisty.dynamic``) change their classes with; :meth:`store` refuses a second
        shape under one name.

        Example::

            @stored(name="note")
            class NoteV2:
                id: UUID = Attr(default_factory=uuid4)
                owner: str = ""
                title: str = ""
                priority: int = 0
                tags: list[str] = Attr(default_factory=list)
                body: str | None = None
                address: Address | None = None
                team: str = ""
                locked: bool = False
                created_at: datetime = Attr(generated="created", default=None)
                updated_at: datetime = Attr(generated="updated", default=None)
                pinned: bool = False

            db.store(Note)
            notes = db.evolve(NoteV2)
            await db.migrate()
        """
        name = meta_of(cls).name
        for other in [c for c, st in self._stores.items() if st.meta.name == name and c is not cls]:
            del self._stores[other]
        return self.store(cls)

    @abstractmethod
    def _open(self, meta: StoreMeta) -> AsyncStore[Any]:
        """A new Store for ``meta``."""

    def files(self, name: str = "files", **options: Any) -> AsyncFileStore:
        """A file store whose bytes are chunks in this database (256 KiB each by default);
        ``options`` are those of ``persisty.files.chunked_files`` (``limits``,
        ``chunk_size``, ``secret`` …).

        Example::

            from persisty.files import Limits

            avatars = db.files("avatars", limits=Limits(max_size=5_000_000))
        """
        from persisty.files._async.open import chunked_files

        return chunked_files(self, name, **options)

    async def commit(
        self, writes: Sequence[tuple[AsyncStore[Any], Edit]], *, atomic: bool = True
    ) -> list[EditResult[Any]]:
        """Apply edits to several stores of this database; one result per write, in order.

        ``atomic=True``: all or nothing, in one engine transaction (one SQL transaction,
        one DynamoDB ``TransactWriteItems``, one Redis transaction, one lock on memory and
        directory stores); the failing write has its code, the others ``aborted``. The
        stores must be this database's own (``db.store(cls)``), else ``ValidationError``.
        ``atomic=False``: each store's edits as one non-atomic ``edit_batch``.

        Example::

            results = await db.commit([(notes, Edit.create(Note(owner="ann", title="A"))),
                                       (db.store(Author), Edit.patch("a1", {"name": "U"}))])
            assert all(r.ok for r in results)
        """
        return await commit_edits(self, writes, atomic)

    async def _commit_stores(
        self, groups: list[tuple[AsyncStoreBase[Any], list[WriteOp]]]
    ) -> list[list[PersistyError | None]]:
        """Apply each store's ops, all or nothing across the stores (backends override)."""
        return await commit_one_store(groups, type(self).__name__)

    async def migrate(self) -> list[str]:
        """Bring the engine's schema up to the stores opened so far; return what was done."""
        return []

    async def drop(self, cls: type[Any] | None = None) -> None:
        """Remove the store of ``cls`` and everything the engine keeps for it (items,
        indexes, sequence counters, tables, files, meta records); without ``cls``, every
        store of this database's namespace. A store used afterwards starts empty.

        Backends override this to leave nothing behind; this default deletes the items of
        the stores opened so far.

        Example::

            await db.drop(Note)   # one store
            await db.drop()       # the whole namespace
        """
        stores = [self.store(cls)] if cls is not None else list(self._stores.values())
        for store in stores:
            await store.delete_all(None)

    async def footprint(self, cls: type[Any] | None = None) -> list[str]:
        """What the engine holds for the store of ``cls`` (without ``cls``, for this
        database's namespace): the names of its keys, tables, files or records. Empty after
        :meth:`drop`; what the conformance suite checks drop with.

        Backends override this to look at the engine itself; this default names the stores
        opened so far that hold items.

        Example::

            await db.drop(Note)
            assert await db.footprint(Note) == []
        """
        stores = [self.store(cls)] if cls is not None else list(self._stores.values())
        found = []
        for store in stores:
            n = await store.count()
            if n:
                found.append(f"{store.meta.name}: {n} item(s)")
        return found

    async def close(self) -> None:  # noqa: B027
        """Release connections; the database is unusable afterwards."""

    async def __aenter__(self) -> AsyncDatabase:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
