"""The conformance suite's hooks and fixtures, shared by its parts.

Each test gets a database with a fresh namespace; afterwards ``drop(database)`` removes what
the test stored (``database.drop()``: nothing is left behind) and the database is closed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from persisty.model import meta_of
from persisty.query import (
    Filter,
    compile_filter,
    sort_key,
    sort_spec,
    validate_filter,
)
from persisty.store import AsyncDatabase, AsyncStore, Edit
from persisty.testing._data import sample_items
from persisty.testing._hooks_async import AsyncEngineHooks
from persisty.testing.models import Item

ITEM = meta_of(Item)


def _expected(items: list[Item], f: Filter | None, order: Any = None) -> list[Item]:
    """What the reference evaluator says a search returns."""
    keep = compile_filter(validate_filter(f, ITEM), ITEM)
    return sorted((i for i in items if keep(i)), key=sort_key(sort_spec(ITEM, order)))


def _keys(items: list[Any]) -> list[str]:
    return [meta_of(type(i)).key_of(i) for i in items]


class AsyncStoreSuiteBase(AsyncEngineHooks):
    """Hooks and fixtures of :class:`persisty.testing.AsyncStoreConformance`."""

    concurrency_workers = 8
    concurrency_increments = 25

    async def drop(self, database: AsyncDatabase) -> None:
        """Remove what a test stored (before the database is closed)."""
        await database.drop()

    @pytest.fixture
    async def database(self) -> AsyncIterator[AsyncDatabase]:
        async with self.opened() as db:
            yield db

    @pytest.fixture
    async def items(self, database: AsyncDatabase) -> AsyncStore[Item]:
        return await self.wrap(database.store(Item))

    @pytest.fixture
    async def loaded(self, items: AsyncStore[Item]) -> tuple[AsyncStore[Item], list[Item]]:
        results = await items.edit_batch([Edit.create(i) for i in sample_items()])
        assert all(r.ok for r in results), [r for r in results if not r.ok][:1]
        return items, [r.item for r in results if r.item is not None]
