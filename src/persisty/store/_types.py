"""Values the Store contract passes around: pages, edits, results, plans and write ops."""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from persisty.query import ALL, Filter

T = TypeVar("T")
Key = tuple[Any, ...]
"""Typed key values, in key-attribute order (backends receive these, users pass strings)."""


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a search. ``next_page_key`` is ``None`` on the last page.

    Example::

        page = notes.search(F.owner == "ann", limit=20)
        while page.next_page_key:
            page = notes.search(F.owner == "ann", limit=20, page_key=page.next_page_key)
    """

    items: list[T]
    next_page_key: str | None = None


class EditKind(enum.StrEnum):
    """What an :class:`Edit` does."""

    CREATE = "create"
    UPDATE = "update"
    PATCH = "patch"
    DELETE = "delete"
    PUT = "put"


# Edit and EditResult are not frozen: a frozen dataclass's __init__ costs three times as
# much, and a bulk batch builds one of each per item. Treat them as values all the same.
@dataclass(slots=True)
class Edit:
    """One write in an ``edit_batch``; build it with the static constructors.

    Example::

        notes.edit_batch([Edit.create(a), Edit.patch(key, {"priority": 2}),
                          Edit.delete(other_key, if_match=tag)], atomic=True)
    """

    kind: EditKind
    item: Any = None
    key: str | None = None
    changes: Mapping[str, Any] | None = None
    if_match: str | None = None
    precondition: Filter | None = None

    @staticmethod
    def create(item: Any) -> Edit:
        """Create ``item``."""
        return Edit(EditKind.CREATE, item)  # (positional: a bulk load builds one per item)

    @staticmethod
    def update(
        item: Any, *, if_match: str | None = None, precondition: Filter | None = None
    ) -> Edit:
        """Replace the stored item with ``item`` (found by its key)."""
        return Edit(EditKind.UPDATE, item=item, if_match=if_match, precondition=precondition)

    @staticmethod
    def put(item: Any, *, if_match: str | None = None) -> Edit:
        """Create ``item``, or replace the stored item with its key (upsert)."""
        return Edit(EditKind.PUT, item=item, if_match=if_match)

    @staticmethod
    def patch(
        key: str,
        changes: Mapping[str, Any],
        *,
        if_match: str | None = None,
        precondition: Filter | None = None,
    ) -> Edit:
        """Change some attributes of the item with ``key``."""
        return Edit(
            EditKind.PATCH,
            key=key,
            changes=dict(changes),
            if_match=if_match,
            precondition=precondition,
        )

    @staticmethod
    def delete(
        key: str, *, if_match: str | None = None, precondition: Filter | None = None
    ) -> Edit:
        """Delete the item with ``key``."""
        return Edit(EditKind.DELETE, key=key, if_match=if_match, precondition=precondition)


@dataclass(slots=True)
class EditResult(Generic[T]):
    """The outcome of one edit: ``ok``, else an error ``code`` (``aborted`` when an atomic
    batch was rolled back because of another edit) and a ``message``; ``item`` is the
    stored item after a successful create, update or patch (the old one for a delete)."""

    edit: Edit
    ok: bool
    code: str | None = None
    item: T | None = None
    message: str | None = None
    field: str | None = None


@dataclass(frozen=True, slots=True)
class Plan:
    """How a backend runs a (validated) filter: ``native`` on the engine, ``residual`` in
    Python (``native & residual`` is the filter; no branch of an ``Or`` is dropped), whether
    the engine returns the native matches already in the requested ``ordered`` order, and
    the engine's own words for it (``detail``). What ``StoreBase._plan`` returns and
    ``explain()`` reports.

    Example::

        plan = Plan(F.owner == "ann", F.title.icontains("x"))   # the rest in Python
        assert plan.ordered and plan.detail == ""
    """

    native: Filter
    residual: Filter = ALL
    ordered: bool = True
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Explain:
    """Where a search runs: ``native`` on the engine, ``residual`` in Python.

    Example::

        plan = notes.explain(F.title.icontains("x"), order=[-F.priority])
        plan.native, plan.residual, plan.detail
    """

    native: Filter
    residual: Filter
    order_native: bool
    detail: str = ""


# ---- what a backend is asked to write --------------------------------------------------


@dataclass(slots=True)
class Insert:
    """Store a new item; ``Conflict`` if the key or a unique index value is taken. ``doc``,
    when set, is the item's canonical JSON already encoded (what ``etag`` hashes)."""

    key: Key
    item: Any
    etag: str
    doc: bytes | None = None


@dataclass(slots=True)
class Replace:
    """Overwrite an existing item; ``NotFound`` if missing, ``PreconditionFailed`` if its
    stored etag is not ``expected`` (when given). ``old`` is the stored item when it was
    read; ``doc``, when set, is the new item's canonical JSON already encoded."""

    key: Key
    item: Any
    etag: str
    expected: str | None = None
    old: Any = None
    doc: bytes | None = None


@dataclass(slots=True)
class Remove:
    """Delete an item; ``NotFound`` if missing, ``PreconditionFailed`` on an etag mismatch."""

    key: Key
    expected: str | None = None
    old: Any = None


WriteOp = Insert | Replace | Remove


@dataclass(frozen=True, slots=True)
class Increment:
    """A patch value that adds ``by`` to a number atomically on the engine (a missing value
    counts as 0); ``Increment(-1)`` decrements.

    Example::

        notes.patch(key, {"priority": Increment(1)})          # returns the new item
        notes.update_all(F.owner == "ann", {"priority": Increment(-1)})
    """

    by: Any = 1

    def __post_init__(self) -> None:
        import decimal

        if isinstance(self.by, bool) or not isinstance(self.by, int | float | decimal.Decimal):
            raise TypeError(f"Increment takes a number, not {self.by!r}")


@dataclass(slots=True)
class Clock:
    """The source of the timestamps a store writes (generated attributes, expiry) and of
    "now" when it decides whether an item has expired.

    ``now`` is ``None`` for the system clock (UTC), a callable returning an aware datetime,
    or a fixed datetime; every store of a database shares the database's clock
    (``db.clock``, or ``connect(url, clock=Clock(...))``), so a test moves time for all of
    them at once.

    Example::

        db = persisty.connect("memory://", clock=Clock(datetime(2030, 1, 1, tzinfo=UTC)))
        db.clock.now += timedelta(hours=2)     # or db.clock.advance(timedelta(hours=2))
    """

    now: Any = field(default=None)

    def __call__(self) -> dt.datetime:
        now = self.now
        if now is None:
            return dt.datetime.now(dt.UTC)
        if isinstance(now, dt.datetime):
            return now if now.tzinfo is not None else now.replace(tzinfo=dt.UTC)
        result: dt.datetime = now()
        return result

    def advance(self, by: dt.timedelta) -> None:
        """Move the clock forward by ``by`` (from the system time if it was not set)."""
        self.now = self() + by


def edit_results(
    edits: Sequence[Edit],
    ops: Sequence[WriteOp | None],
    errors: Sequence[Any],
    *,
    atomic: bool,
    aborted: str = "another edit in the batch failed",
) -> list[EditResult[Any]]:
    """One result per edit from what was planned (``ops``) and what failed (``errors``,
    each a ``PersistyError`` or ``None``); when ``atomic`` and anything failed, the rest are
    ``aborted``, with ``aborted`` saying why."""
    failed = any(err is not None for err in errors)
    results: list[EditResult[Any]] = []
    for e, op, err in zip(edits, ops, errors, strict=True):
        if err is not None:
            results.append(EditResult(e, False, err.code, None, err.message, err.field))
        elif atomic and failed:
            results.append(EditResult(e, False, "aborted", None, f"not applied: {aborted}"))
        else:
            item = op.item if isinstance(op, Insert | Replace) else getattr(op, "old", None)
            results.append(EditResult(e, True, None, item))
    return results


def clock_of(store: Any) -> Clock:
    """The clock of the backend store under ``store`` (through any layers): the time that
    store writes and expires items by."""
    seen = 0
    while store is not None and seen < 100:
        clock = getattr(store, "clock", None)
        if isinstance(clock, Clock):
            return clock
        store = getattr(store, "inner", None)
        seen += 1
    return Clock()
