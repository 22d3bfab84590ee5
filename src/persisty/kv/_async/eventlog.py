"""``AsyncEventLog``: dicts whose every change is an event (sync twin generated)."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

import msgspec

from persisty._retry import attempts, lost_too_often
from persisty.errors import Conflict, PreconditionFailed, Unavailable, ValidationError
from persisty.kv._async._base import AsyncService, raise_result, retryable
from persisty.kv._logic import (
    EVENTS_FIRST,
    EVENTS_LAST,
    HEAD_POS,
    check_key,
    check_time,
    event_pos,
)
from persisty.kv._models import EventRow
from persisty.kv._ops import fold, op_function, op_name, parse_changes
from persisty.model import etag
from persisty.query import F, Filter
from persisty.store import Edit

PAGE = 1000
_JSON = msgspec.json


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class AsyncEventLog(AsyncService):
    """Event sequences (rstore's names): each ``apply`` is one event ``(t, {item: (op,
    value)})`` with ``t`` in milliseconds; the state is the fold of the events.

    Ops are stored by name (never pickled). ``apply`` folds the change onto the current
    state before it writes anything, so a bad change raises ``ValidationError`` and the
    sequence stays as it was. Every sequence keeps its current state beside its events
    (updated in the same atomic batch as each event), so ``current`` is one read.

    Example::

        log = AsyncEventLog("sqlite:///data.db")
        await log.apply("cart", {"apples": 3})
        await log.apply("cart", {"apples": (operator.add, 2)})
        await log.current("cart")                 # {'apples': 5}
        await log.events("cart")                  # [(t1, {'apples': (setitem, 3)}), …]
    """

    model = EventRow
    page_size = PAGE
    encrypted_fields = ("data",)

    def _k(self, key: str, pos: str) -> str:
        return self.raw.meta.key_string((self.ns, "/" + key, pos))

    def _seq(self, key: str) -> Filter:
        return self.mine & (F.seq == "/" + check_key(key))

    # ---- encoding -------------------------------------------------------------------------

    def _dump_state(self, state: Mapping[str, Any]) -> str:
        return _JSON.encode({k: self._encode(v) for k, v in state.items()}).decode()

    def _load_state(self, data: str) -> dict[str, Any]:
        return {k: self._decode(v) for k, v in _JSON.decode(data).items()}

    def _dump_changes(self, changes: list[tuple[str, str, Any]]) -> str:
        return _JSON.encode(
            [[i, o, None if o == "delitem" else self._encode(v)] for i, o, v in changes]
        ).decode()

    def _load_changes(self, data: str) -> list[tuple[str, str, Any]]:
        return [(i, o, None if v is None else self._decode(v)) for i, o, v in _JSON.decode(data)]

    def _changes_of(self, row: EventRow) -> list[tuple[str, str, Any]]:
        if row.snapshot:
            return [(i, "setitem", v) for i, v in self._load_state(row.data).items()]
        return self._load_changes(row.data)

    # ---- reads ---------------------------------------------------------------------------

    async def _head(self, key: str) -> EventRow | None:
        if not await self._ready():
            return None
        found: EventRow | None = await self.store.read(self._k(key, HEAD_POS))
        return found

    async def _rows(
        self,
        key: str,
        start: int | None = None,
        end: int | None = None,
        *,
        newest_first: bool = False,
        limit: int | None = None,
    ) -> list[EventRow]:
        """Event rows of ``key`` with ``start <= t <= end``, a page per query."""
        if not await self._ready():
            return []
        lo = EVENTS_FIRST if start is None else event_pos(start)
        hi = EVENTS_LAST if end is None else event_pos(end)
        rows: list[EventRow] = []
        while limit is None or len(rows) < limit:
            page_size = self.page_size if limit is None else min(self.page_size, limit - len(rows))
            f = self._seq(key) & (F.pos >= lo) & (F.pos <= hi)
            page = await self.store.search(
                f, order=[-F.pos if newest_first else +F.pos], limit=page_size
            )
            rows.extend(page.items)
            if len(page.items) < page_size:
                break
            if newest_first:
                hi = event_pos(page.items[-1].t - 1) if page.items[-1].t is not None else lo
            else:
                lo = event_pos(page.items[-1].t + 1)
        return rows

    async def _state_at(self, key: str, t: int) -> tuple[dict[str, Any], int | None] | None:
        """The state after every event at or before ``t`` and the time of the last of them,
        else ``None``. History starts at the oldest row, which after a ``prune`` is the
        snapshot that replaced the events before it."""
        rows = await self._rows(key, end=t)
        if not rows:
            return None
        state: dict[str, Any] = {}
        for row in rows:
            state = self._fold(state, row)
        return state, rows[-1].t

    def _fold(self, state: dict[str, Any], row: EventRow) -> dict[str, Any]:
        if row.snapshot:
            return self._load_state(row.data)
        return fold(state, self._load_changes(row.data))

    async def current(self, key: str, withtimestamp: bool = False) -> Any:
        """The state ``{item: value}`` (``(t, state)`` with ``withtimestamp``), else
        ``None`` for an unknown sequence. One read: the state kept with the head."""
        head = await self._head(key)
        if head is None:
            return None
        state = self._load_state(head.data)
        return (head.t, state) if withtimestamp else state

    async def version(self, key: str) -> int:
        """How many events were applied to ``key`` (0 for an unknown one): the
        ``expected_version`` of the next ``apply``."""
        head = await self._head(key)
        return 0 if head is None else head.version

    async def past(self, key: str, t: int, withtimestamp: bool = False) -> Any:
        """The state as it was at time ``t`` (inclusive), else ``None``."""
        found = await self._state_at(check_key(key), check_time(t))
        if found is None:
            return None
        state, at = found
        return (at, state) if withtimestamp else state

    async def events(
        self, key: str, start: int | None = None, end: int | None = None, ops: Any = None
    ) -> list[tuple[int, dict[str, tuple[Any, Any]]]] | None:
        """``[(t, {item: (op, value)})]`` in time order with ``start <= t <= end``, only the
        changes whose op is in ``ops`` if given; ``None`` for an unknown sequence."""
        if await self._head(check_key(key)) is None:
            return None
        wanted: set[str] | None = None
        if ops is not None:
            if not isinstance(ops, list | set | tuple | frozenset):
                ops = [ops]
            wanted = {op_name(o) for o in ops}
        start = None if start is None else check_time(start, "start")
        end = None if end is None else check_time(end, "end")
        result: list[tuple[int, dict[str, tuple[Any, Any]]]] = []
        for row in await self._rows(key, start, end):
            changes = {
                i: (op_function(o), v)
                for i, o, v in self._changes_of(row)
                if wanted is None or o in wanted
            }
            if changes or (wanted is None and row.t is not None):
                assert row.t is not None
                result.append((row.t, changes))
        return result

    async def eventsequences(self) -> list[str]:
        """The sequences of this namespace, in order: one query per sequence (a skip scan
        over the key)."""
        return await self._distinct("seq", "pos")

    eventsources = eventsequences

    # ---- writes ----------------------------------------------------------------------------

    async def apply(
        self,
        key: str,
        changes: Mapping[str, Any],
        t: int | None = None,
        *,
        expected_version: int | None = None,
    ) -> dict[str, Any] | None:
        """Apply ``{item: value | (op, value)}`` as one event at ``t`` (now in ms when
        ``None``, always after the last event) and return the current state.

        A change that cannot be applied raises ``ValidationError`` and nothing is written;
        an explicit ``t`` that already has an event raises ``Conflict``; with
        ``expected_version`` the apply happens only if the sequence has exactly that many
        events (``PreconditionFailed`` otherwise). An empty ``changes`` writes nothing.
        """
        self._writable()
        check_key(key)
        parsed = parse_changes(changes)
        if t is not None:
            check_time(t)
        if expected_version is not None and (
            not isinstance(expected_version, int) or isinstance(expected_version, bool)
        ):
            raise ValidationError("expected_version must be an int", field="expected_version")
        await self._ready()
        encoded = self._dump_changes(parsed)  # every value must encode before anything
        for _ in attempts():
            head = await self._head(key)
            version = 0 if head is None else head.version
            if expected_version is not None and version != expected_version:
                raise PreconditionFailed(f"{key!r} is at version {version}, not {expected_version}")
            if not parsed:
                return None if head is None else self._load_state(head.data)
            last = None if head is None else head.t
            at = t if t is not None else (_now_ms() if last is None else max(_now_ms(), last + 1))
            check_time(at)
            if head is None or last is None or at > last:
                state = fold({} if head is None else self._load_state(head.data), parsed)
                newest = at
            else:
                state = await self._replay_with(key, at, parsed)
                newest = last
            data = self._dump_state(state)
            event = EventRow(
                ns=self.ns,
                seq="/" + key,
                pos=event_pos(at),
                t=at,
                data=encoded,
                version=version + 1,
            )
            new_head = EventRow(
                ns=self.ns, seq="/" + key, pos=HEAD_POS, t=newest, data=data, version=version + 1
            )
            edits = [
                Edit.create(event),
                Edit.create(new_head)
                if head is None
                else Edit.update(new_head, if_match=etag(head)),
            ]
            try:
                results = await self.store.edit_batch(edits, atomic=True)
            except Unavailable as e:
                if retryable(e):
                    continue
                raise
            if all(r.ok for r in results):
                return state
            if not results[0].ok and results[0].code == "conflict" and t is not None:
                raise Conflict(f"{key!r} already has an event at t={t}")
            if (
                not results[0].ok
                and results[0].code != "conflict"
                and (results[0].code != "aborted")
            ):
                raise_result(results[0])
            if not results[1].ok and results[1].code not in (
                "conflict",
                "precondition_failed",
                "not_found",
                "aborted",
            ):
                raise_result(results[1])
            if expected_version is not None:
                raise PreconditionFailed(
                    f"{key!r} changed: it is no longer at version {expected_version}"
                )
        raise lost_too_often()

    async def _replay_with(
        self, key: str, at: int, parsed: list[tuple[str, str, Any]]
    ) -> dict[str, Any]:
        """The current state when ``parsed`` is inserted at ``at``, before later events."""
        if await self.store.read(self._k(key, event_pos(at))) is not None:
            raise Conflict(f"{key!r} already has an event at t={at}")
        before = await self._state_at(key, at)
        state = {} if before is None else before[0]
        state = fold(state, parsed)
        for row in await self._rows(key, at + 1, None):
            if row.snapshot:
                raise ValidationError(f"t={at} is before the pruned history of {key!r}", field="t")
            state = self._fold(state, row)
        return state

    async def prune(self, *keys: str, remove: bool = True, before: int | None = None) -> int:
        """With ``before=t``: fold the events of each key older than ``t`` into one snapshot
        event (at the time of the last of them), so ``current`` and every ``past(t' >= t)``
        stay the same. Then, with ``remove``, delete a sequence whose state is empty
        entirely. Returns how many rows were deleted."""
        self._writable()
        if not await self._ready():
            return 0
        total = 0
        for key in keys:
            check_key(key)
            head = await self._head(key)
            if head is None:
                continue
            if before is not None:
                total += await self._snapshot(key, check_time(before, "before"))
            if remove and not self._load_state(head.data):
                total += await self.store.delete_all(self._seq(key))
        return total

    async def _snapshot(self, key: str, before: int) -> int:
        if before == -(2**63):
            return 0
        older = await self._rows(key, end=before - 1, newest_first=True, limit=1)
        if not older or older[0].t is None:
            return 0
        last = older[0]
        assert last.t is not None
        if last.snapshot and not await self._rows(key, end=last.t - 1, limit=1):
            return 0
        found = await self._state_at(key, last.t)
        assert found is not None
        snap = EventRow(
            ns=self.ns,
            seq="/" + key,
            pos=last.pos,
            t=last.t,
            data=self._dump_state(found[0]),
            version=last.version,
            snapshot=True,
        )
        await self.store.update(snap, if_match=etag(last))
        # the snapshot replaces the state: a crash before the deletes below loses nothing
        return await self.store.delete_all(
            self._seq(key) & (F.pos >= EVENTS_FIRST) & (F.pos < last.pos)
        )

    async def discard(self) -> int:
        """Delete every event sequence of this namespace (and of no other)."""
        self._writable()
        if not await self._ready():
            return 0
        return await self.store.delete_all(self.mine)

    async def keys(self) -> Iterable[str]:
        """The same as :meth:`eventsequences`."""
        return await self.eventsequences()
