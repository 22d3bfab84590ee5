"""The single-item half of the base class backends build on (async): the hooks, expiry,
checks, and create / put / read / update / patch / delete / search / count / explain.
``AsyncStoreBase`` (``base.py``) adds the batch engine.

The sync twin ``_sync/core.py`` is generated from this file by
``scripts/generate_sync.py``; edit this file, never the twin.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from abc import abstractmethod
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from persisty.errors import (
    Conflict,
    NotFound,
    PersistyError,
    PreconditionFailed,
    ValidationError,
)
from persisty.model import StoreMeta, etag, etag_of
from persisty.query import (
    ALL,
    NONE,
    And,
    Compare,
    F,
    Filter,
    Op,
    Or,
    PageKeys,
    Sort,
    compile_filter,
    sort_spec,
    sort_values,
    validate_filter,
)
from persisty.store._async.composed import MAX_RETRIES, _after_lost_race
from persisty.store._async.contract import (
    DEFAULT_LIMIT,
    PURGE_EVERY,
    PURGE_LIMIT,
    AsyncStore,
    OrderArg,
)
from persisty.store._prepare import (
    as_item,
    check_changes,
    prepare_create,
    prepare_patch,
    prepare_update,
)
from persisty.store._types import (
    Clock,
    Explain,
    Insert,
    Key,
    Page,
    Plan,
    Remove,
    Replace,
    WriteOp,
)

if TYPE_CHECKING:
    from persisty.store._async.database import AsyncDatabase

T = TypeVar("T")


class AsyncStoreCore(AsyncStore[T]):
    """The single-item half of :class:`AsyncStoreBase` (which backends subclass): hooks,
    expiry, checks and the single-item methods of the contract."""

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
        """How often a write was tried again because the item changed between the read and
        the conditional write (native atomic paths never need to)."""
        self._writes = 0
        # update() needs no read when it keeps nothing of the stored item
        self._blind_update = all(
            a.updatable and a.generated not in ("created", "sequence")
            for a in meta.attrs
            if a.name not in meta.key.attrs
        )
        self._setup_lock = asyncio.Lock()

    checks_expected = False
    """Whether ``_commit`` checks each op's ``expected`` etag, and reports a missing key, on
    the engine in the write itself. Such a backend gets one-round-trip writes from this
    class: ``delete`` without a precondition, and ``update`` without a precondition of a
    model whose update keeps nothing of the stored item, write without reading first."""

    finds_residual = False
    """Whether ``_find`` and ``_count`` take the whole validated filter and evaluate its
    residual themselves (a backend that streams candidates from the engine and filters
    them as they come); else this class hands them the native part of :meth:`_plan` and
    filters the rest in Python."""

    # ---- hooks --------------------------------------------------------------------------

    _ready = False
    """Whether :meth:`_setup` has run on this store object (see :meth:`_prepare`)."""

    async def _setup(self) -> list[str]:
        """Make the engine ready for this store (create its table, check how its items are
        indexed, ...) and say what was done; :meth:`_prepare` runs it once. Nothing by
        default."""
        return []

    async def _prepare(self) -> list[str]:
        """Run :meth:`_setup` unless it has run on this store object since it was opened or
        last :meth:`_unprepare`-d; what it did. Concurrent callers wait for one setup, and a
        failed setup runs again next time. Backends call it before touching the engine
        (``if not self._ready: await self._prepare()`` on hot paths)."""
        if self._ready:
            return []
        async with self._setup_lock:
            if self._ready:
                return []
            done = await self._setup()
            self._ready = True
            return done

    def _unprepare(self) -> None:
        """Make the next :meth:`_prepare` run :meth:`_setup` again (after a drop, or so that
        a migrate checks the engine anew)."""
        self._ready = False

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

    def _plan(self, f: Filter, spec: Sort) -> Plan:
        """How the engine runs the validated filter ``f`` in the order ``spec``: the native
        and residual parts (``native & residual == f``), whether native matches come back
        in order, and the engine's words for it (else :meth:`_describe` gives them)."""
        return Plan(f)

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
        if self.finds_residual:
            return await self._find(f, spec, after, limit)
        plan = self._plan(f, spec)
        native = plan.native
        if plan.residual is ALL:
            return await self._find(native, spec, after, limit)
        keep = compile_filter(plan.residual, self.meta)
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
                spec = sort_spec(self.meta, None)
                plan = self._plan(f, spec)
                plan_expired = self._plan(expired, spec)
                if plan.residual is ALL and plan_expired.residual is ALL:
                    total = await self._count(plan.native)
                    return max(0, total - await self._count(plan_expired.native))
            f = self._live(f)
        if f is NONE:
            return 0
        if self.finds_residual:
            return await self._count(f)
        spec = sort_spec(self.meta, None)
        plan = self._plan(f, spec)
        if plan.residual is ALL:
            return await self._count(plan.native)
        return len(await self._collect(f, spec, None, None))

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
        plan = self._plan(f, spec)
        return Explain(
            plan.native,
            plan.residual,
            plan.ordered,
            plan.detail or self._describe(plan.native, spec),
        )
