"""The change-events layer: after-commit hooks and ``listen()`` subscriptions.

Edit this file; scripts/generate_sync.py writes its sync twin ``layers/observed/_sync.py``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

from persisty.errors import ValidationError
from persisty.layers._pinning._async import (
    batched_delete_all,
    batched_update_all,
    pinned_edit_batch,
)
from persisty.layers._primitives import AsyncChangeQueue, AsyncHookCaller, Outcome
from persisty.layers.observed._changes import KINDS, Change, Failures, HookFailure
from persisty.query import Filter
from persisty.store import (
    AsyncOutboxSource,
    AsyncStore,
    AsyncWrappedStore,
    Edit,
    EditKind,
    EditResult,
    put_through_async,
    resolve_puts_async,
)

T = TypeVar("T")
Hook = Callable[[Change], Any]
H = TypeVar("H", bound=Hook)


def _same(item: Any) -> Any:
    return item


def _as_is(edit: Edit) -> Edit:
    return edit


class AsyncSubscription:
    """The changes committed through an observed store since ``listen()`` was called.

    Iterate it (``async for change in sub``) or ``await sub.get(timeout)``; ``close()`` (or
    leaving the ``async with`` block) ends the iteration. A subscriber that falls more than
    ``maxsize`` changes behind loses the oldest ones, counted in ``dropped``.

    Example::

        notes = observed(db.store(Note))
        async with notes.listen() as changes:
            await notes.create(Note(owner="ann"))
            async for change in changes:
                print(change.kind, change.key)
                break
    """

    def __init__(
        self, store: AsyncObservedStore[Any], kinds: Iterable[str] | None, maxsize: int
    ) -> None:
        self._store = store
        self.kinds = frozenset(kinds or KINDS)
        self._queue = AsyncChangeQueue(maxsize)
        self.closed = False
        self._ended = False

    @property
    def dropped(self) -> int:
        """How many changes were dropped because this subscriber fell behind."""
        return self._queue.dropped

    def _offer(self, change: Change) -> None:
        if change.kind in self.kinds and not self.closed:
            self._queue.put(change)

    async def get(self, timeout: float | None = None) -> Change | None:
        """The next change; ``None`` after ``timeout`` seconds, or once closed and drained."""
        if self._ended:
            return None
        change = await self._queue.get(timeout)
        if change is None and self.closed:
            self._ended = True
        return change

    def close(self) -> None:
        """Stop receiving changes; an iteration ends after the changes already received."""
        if not self.closed:
            self.closed = True
            self._store._unsubscribe(self)
            self._queue.put(None)

    async def __aenter__(self) -> AsyncSubscription:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    def __aiter__(self) -> AsyncSubscription:
        return self

    async def __anext__(self) -> Change:
        change = None if self._ended else await self._queue.get()
        if change is None:
            self._ended = True
            raise StopAsyncIteration
        return change


class AsyncObservedStore(AsyncWrappedStore[T]):
    """A Store that reports every committed write: hooks run after the commit, with the item
    before and after, and ``listen()`` hands the same changes to subscribers.

    Register hooks with ``on_create``, ``on_update`` (updates and patches), ``on_delete`` or
    ``on_change`` (all three); each takes a :class:`Change` and may be a coroutine function.
    Hooks run in registration order after the write is committed; a hook that raises is
    logged (logger ``persisty.events``) and recorded in ``failures``, never undoes the write,
    and does not keep the later hooks or subscribers from running. Writes made elsewhere
    (another process, the inner store directly) are not seen.

    With ``outbox=True`` (a SQL store only, directly beneath this layer) each change is
    also written to the database's outbox table in the transaction of its write and
    deleted once delivered; call :meth:`deliver_pending` at startup (after registering the
    hooks) and from time to time to deliver the changes of a process that crashed between
    its commit and its delivery: delivery is then at-least-once, so hooks should be
    idempotent. ``outbox_lease`` is how long a writer has to deliver before another
    process may take its changes over.

    Example::

        notes = observed(db.store(Note))

        @notes.on_update
        async def reindex(change):
            await search_index.put(change.key, change.new)   # your own index

        await notes.patch(key, {"title": "new"})      # reindex runs after the commit
    """

    def __init__(
        self,
        inner: AsyncStore[T],
        *,
        keep_failures: int = 100,
        outbox: bool = False,
        outbox_lease: dt.timedelta = dt.timedelta(seconds=30),
    ) -> None:
        self._outbox: Any = None
        if outbox:
            if not isinstance(inner, AsyncOutboxSource):  # the SQL stores
                raise ValidationError(
                    "outbox=True needs a SQL store directly beneath observed(), not "
                    f"{type(inner).__name__}",
                    field="outbox",
                )
            inner, self._outbox = inner.with_outbox(outbox_lease.total_seconds())
        super().__init__(inner)
        self._hooks: list[tuple[frozenset[str], Hook]] = []
        self._subscribers: list[AsyncSubscription] = []
        self._lock = threading.Lock()
        self.failures = Failures(keep_failures)

    # ---- registration -------------------------------------------------------------------

    def _add(self, kinds: Iterable[str], hook: H) -> H:
        if not callable(hook):
            raise ValidationError(f"a hook must be callable, not {hook!r}", field="hook")
        with self._lock:
            self._hooks.append((frozenset(kinds), hook))
        return hook

    def on_create(self, hook: H) -> H:
        """Call ``hook(change)`` after each create; usable as a decorator."""
        return self._add(("create",), hook)

    def on_update(self, hook: H) -> H:
        """Call ``hook(change)`` after each update or patch; usable as a decorator."""
        return self._add(("update",), hook)

    def on_delete(self, hook: H) -> H:
        """Call ``hook(change)`` after each delete; usable as a decorator."""
        return self._add(("delete",), hook)

    def on_change(self, hook: H) -> H:
        """Call ``hook(change)`` after every write; usable as a decorator."""
        return self._add(KINDS, hook)

    def remove_hook(self, hook: Hook) -> None:
        """Stop calling ``hook`` (every registration of it)."""
        with self._lock:
            self._hooks = [(k, h) for k, h in self._hooks if h is not hook]

    def listen(
        self, kinds: Iterable[str] | None = None, *, maxsize: int = 10_000
    ) -> AsyncSubscription:
        """Subscribe to the changes committed from now on (``kinds``: some of ``create``,
        ``update``, ``delete``)."""
        if kinds is not None:
            kinds = list(kinds)
            bad = [k for k in kinds if k not in KINDS]
            if bad:
                raise ValidationError(f"unknown change kind {bad[0]!r}", field="kinds")
        sub = AsyncSubscription(self, kinds, maxsize)
        with self._lock:
            self._subscribers.append(sub)
        return sub

    def _unsubscribe(self, sub: AsyncSubscription) -> None:
        with self._lock:
            self._subscribers = [s for s in self._subscribers if s is not sub]

    # ---- delivery -----------------------------------------------------------------------

    async def _emit(self, changes: Sequence[Change]) -> None:
        hooks = list(self._hooks)
        subscribers = list(self._subscribers)
        for change in changes:
            for kinds, hook in hooks:
                if change.kind not in kinds:
                    continue
                try:
                    await AsyncHookCaller.call(hook, change)
                except Exception as e:  # a hook's failure never reaches the writer
                    self.failures.add(HookFailure(change, hook, e))
            for sub in subscribers:
                sub._offer(change)

    def _change(self, o: Outcome) -> Change:
        kind = {EditKind.CREATE: "create", EditKind.DELETE: "delete"}.get(o.edit.kind, "update")
        shown = o.old if kind == "delete" else o.item
        key = self.meta.key_of(shown) if shown is not None else str(o.edit.key)
        return Change(kind, self.meta.name, key, o.old, None if kind == "delete" else o.item)

    @contextlib.contextmanager
    def _outbox_rows(self) -> Iterator[list[str]]:
        if self._outbox is None:
            yield []
        else:
            with self._outbox.collecting() as ids:
                yield ids

    async def _apply(self, edits: Sequence[Edit], atomic: bool) -> list[Outcome]:
        with self._outbox_rows() as ids:
            outcomes = await pinned_edit_batch(
                self.inner,
                self.meta,
                edits,
                atomic,
                view=_same,
                translate=_as_is,
                pin_all=True,
                same_etags=True,
            )
        await self._emit([self._change(o) for o in outcomes if o.ok])
        await self._delivered(ids)
        return outcomes

    async def _delivered(self, ids: list[str]) -> None:
        if ids:
            await self._outbox.done(ids)

    # ---- the outbox ---------------------------------------------------------------------

    async def deliver_pending(self, limit: int | None = None) -> int:
        """Deliver the outbox's changes whose writer did not (it crashed, or its lease ran
        out), oldest first, to the hooks and subscribers registered now; return how many.

        Example::

            notes = observed(sql_db.store(Note), outbox=True)   # sql_db: a SQL database
            notes.on_change(reindex)
            await notes.deliver_pending()     # what a crashed process left undelivered
        """
        if self._outbox is None:
            raise ValidationError(
                "this store has no outbox: observed(store, outbox=True)", field="outbox"
            )
        delivered = 0
        while limit is None or delivered < limit:
            rows = await self._outbox.claim(100 if limit is None else min(100, limit - delivered))
            if not rows:
                break
            await self._emit(
                [
                    Change(kind, self.meta.name, key, old, new, at)
                    for _, kind, key, old, new, at in rows
                ]
            )
            await self._outbox.done([row[0] for row in rows])
            delivered += len(rows)
        return delivered

    async def pending_changes(self) -> int:
        """How many changes wait in the outbox: being delivered, or left by a crash."""
        if self._outbox is None:
            return 0
        return int(await self._outbox.pending())

    async def _one(self, edit: Edit) -> Outcome:
        (outcome,) = await self._apply([edit], True)
        if not outcome.ok:
            raise outcome.error()
        return outcome

    # ---- writes -------------------------------------------------------------------------

    async def create(self, item: T) -> T:
        with self._outbox_rows() as ids:
            new = await self.inner.create(item)
        await self._emit([Change("create", self.meta.name, self.meta.key_of(new), None, new)])
        await self._delivered(ids)
        return new

    async def update(
        self, item: T, *, if_match: str | None = None, precondition: Filter | None = None
    ) -> T:
        outcome = await self._one(Edit.update(item, if_match=if_match, precondition=precondition))
        return outcome.item  # type: ignore[no-any-return]

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
        if not isinstance(changes, Mapping):
            raise ValidationError("changes must be a mapping of attribute names to values")
        outcome = await self._one(
            Edit.patch(key, changes, if_match=if_match, precondition=precondition)
        )
        return outcome.item  # type: ignore[no-any-return]

    async def delete(
        self, key: str, *, if_match: str | None = None, precondition: Filter | None = None
    ) -> None:
        await self._one(Edit.delete(key, if_match=if_match, precondition=precondition))

    async def edit_batch(self, edits: Sequence[Edit], atomic: bool = True) -> list[EditResult[T]]:
        edits = await resolve_puts_async(self, edits)
        return [o.result(_same) for o in await self._apply(edits, atomic)]

    async def update_all(self, filter: Filter | None, changes: Mapping[str, Any]) -> int:
        return await batched_update_all(self, filter, changes)

    async def delete_all(self, filter: Filter | None) -> int:
        return await batched_delete_all(self, filter)
