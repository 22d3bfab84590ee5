"""The base of layers (async): ``AsyncWrappedStore`` passes every call to the store it
wraps.

Edit this file; scripts/generate_sync.py writes its sync twin ``_sync/wrapped.py``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from persisty.query import (
    Filter,
)
from persisty.store._async.contract import AsyncStore, OrderArg
from persisty.store._types import (
    Edit,
    EditResult,
    Explain,
    Page,
)

T = TypeVar("T")


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
