"""Conformance: page keys are sealed (no attribute value in clear) and bound to their
namespace, on every backend and layer.

Edit this file; scripts/generate_sync.py writes its sync twin ``testing/_secrecy/_sync.py``.
"""

from __future__ import annotations

import base64
import uuid
from typing import Any

import pytest

from persisty.errors import ValidationError
from persisty.query import F
from persisty.store import AsyncDatabase, AsyncStore
from persisty.testing.models import Item


class AsyncPageKeySecrecyConformance:
    """Page keys carry nothing readable and do not cross namespaces. Mixed into
    :class:`persisty.testing.AsyncStoreConformance`."""

    async def open_database(self, namespace: str) -> AsyncDatabase:
        raise NotImplementedError

    async def wrap(self, store: AsyncStore[Any]) -> AsyncStore[Any]:
        return store

    async def drop(self, database: AsyncDatabase) -> None:
        raise NotImplementedError

    async def test_page_key_hides_sort_values(self, items: AsyncStore[Item]) -> None:
        secret_title = "zebra-" + uuid.uuid4().hex
        for t in ("aardvark", secret_title, "zz"):
            await items.create(Item(owner="o", title=t))
        page = await items.search(order=[+F.title], limit=2)
        key = page.next_page_key
        assert key is not None and page.items[-1].title == secret_title
        assert secret_title not in key
        for part in key.split("."):
            raw = base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
            assert secret_title.encode() not in raw
            assert str(page.items[-1].id).encode() not in raw
        rest = await items.search(order=[+F.title], limit=2, page_key=key)
        assert [i.title for i in rest.items] == ["zz"]

    async def test_page_key_bound_to_namespace(
        self, database: AsyncDatabase, items: AsyncStore[Item]
    ) -> None:
        for i in range(3):
            await items.create(Item(owner="o", title=f"t{i}"))
        key = (await items.search(order=[+F.title], limit=1)).next_page_key
        assert key is not None
        other = await self.open_database("t" + uuid.uuid4().hex[:12])
        try:
            theirs = await self.wrap(other.store(Item))
            await theirs.create(Item(owner="o", title="t0"))
            await theirs.search(limit=1)  # a backend may load the secret it keeps first
            other.pages.use_secret(database.pages)  # the same secret, another tenant
            with pytest.raises(ValidationError) as e:
                await theirs.search(order=[+F.title], limit=1, page_key=key)
            assert e.value.field == "page_key"
        finally:
            try:
                await self.drop(other)
            finally:
                await other.close()
