"""The hooks every conformance suite shares: a test class of one engine overrides
``open_database`` (and ``wrap`` for a layer, ``drop`` for its own clean-up), and each suite
opens its databases through :meth:`AsyncEngineHooks.opened`."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from persisty.store import AsyncDatabase, AsyncStore


class AsyncEngineHooks:
    """``open_database``, ``drop`` and ``wrap``, and a database opened and cleaned up."""

    async def open_database(self, namespace: str) -> AsyncDatabase:
        """A database on the engine under test, isolated by ``namespace``."""
        raise NotImplementedError

    async def drop(self, database: AsyncDatabase) -> None:
        """Remove what a test stored (before the database is closed)."""
        for store in list(database._stores.values()):
            await store.delete_all(None)

    async def wrap(self, store: AsyncStore[Any]) -> AsyncStore[Any]:
        """Layers under test override this to wrap the backend's store."""
        return store

    @asynccontextmanager
    async def opened(self) -> AsyncIterator[AsyncDatabase]:
        """A database in a namespace of its own, dropped and closed afterwards."""
        db = await self.open_database("t" + uuid.uuid4().hex[:12])
        try:
            yield db
        finally:
            try:
                await self.drop(db)
            finally:
                await db.close()
