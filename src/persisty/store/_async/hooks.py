"""The hooks half of the base class backends build on (async): construction, the
capability flags, the one ``_prepare()`` / ``_setup()`` / ``_unprepare()`` hook design, the
engine hooks a backend implements (``_get``, ``_commit``, ``_find`` ...), and the helpers
the reads and writes share (etag and precondition checks, expiry, sequences).

``AsyncStoreReads`` (``reads.py``) adds the read side of the contract, ``AsyncStoreCore``
(``core.py``) the single-item writes, ``AsyncStoreBase`` (``base.py``) the batch engine.

Edit this file: ``scripts/generate_sync.py`` writes its sync twin ``_sync/hooks.py``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from abc import abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from persisty.errors import PersistyError, PreconditionFailed, ValidationError
from persisty.model import StoreMeta
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
    validate_filter,
)
from persisty.store._async.contract import (
    DEFAULT_LIMIT,
    PURGE_EVERY,
    PURGE_LIMIT,
    AsyncStore,
)
from persisty.store._types import Clock, Key, Plan, WriteOp

if TYPE_CHECKING:
    from persisty.store._async.database import AsyncDatabase

T = TypeVar("T")


class AsyncStoreHooks(AsyncStore[T]):
    """What the reads and writes of :class:`AsyncStoreBase` stand on: the hooks a backend
    implements, the capability flags, and the shared checks (etag, precondition, expiry)."""

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
