"""The conformance suite: the Store contract as tests, run against every backend and layer.

Subclass it in a test module and say how to open a database on your engine::

    class TestMyBackend(AsyncStoreConformance):
        async def open_database(self, namespace):
            return persisty.aio.connect("mine://…", namespace=namespace)

Each test gets a database with a fresh namespace; afterwards ``drop(database)`` removes what
the test stored (``database.drop()``: nothing is left behind) and the database is closed.
"""

from __future__ import annotations

import uuid

from persisty.query import Order
from persisty.store import AsyncDatabase, AsyncStore
from persisty.testing._secrecy._async import AsyncPageKeySecrecyConformance
from persisty.testing._store._async.base import AsyncStoreSuiteBase
from persisty.testing._store._async.batch import AsyncBatchConformance
from persisty.testing._store._async.crud import AsyncCrudConformance
from persisty.testing._store._async.search import AsyncSearchConformance
from persisty.testing.models import Item


class AsyncStoreConformance(
    AsyncCrudConformance,
    AsyncSearchConformance,
    AsyncBatchConformance,
    AsyncStoreSuiteBase,
    AsyncPageKeySecrecyConformance,
):
    """The Store contract. Subclasses implement :meth:`open_database`."""

    # ---- isolation -----------------------------------------------------------------------

    async def test_namespaces_isolated(
        self, database: AsyncDatabase, items: AsyncStore[Item]
    ) -> None:
        await items.create(Item(owner="ann", title="mine"))
        other = await self.open_database("t" + uuid.uuid4().hex[:12])
        try:
            theirs = await self.wrap(other.store(Item))
            assert await theirs.count() == 0
            t = await theirs.create(Item(owner="bob", title="theirs"))
            assert await items.read(str(t.id)) is None
            assert await items.count() == 1
            assert [i.title for i in (await theirs.search()).items] == ["theirs"]
        finally:
            await self.drop(other)
            await other.close()


__all__ = ["AsyncStoreConformance", "Order"]
