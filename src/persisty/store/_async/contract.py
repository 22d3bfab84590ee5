"""The Store contract (async): ``AsyncStore``, the one interface every backend and layer
implements, and the constants the base classes share.

Edit this file; scripts/generate_sync.py writes its sync twin ``_sync/contract.py``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from typing import Any, Generic, TypeVar

from persisty.errors import (
    NotFound,
)
from persisty.model import StoreMeta, parse_path
from persisty.query import (
    Filter,
    Order,
)
from persisty.store._async.composed import put_through
from persisty.store._types import (
    Edit,
    EditResult,
    Explain,
    Page,
)

T = TypeVar("T")
OrderArg = Iterable[Order | str] | Order | str | None

DEFAULT_LIMIT = 100
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
