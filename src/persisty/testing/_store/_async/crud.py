"""Conformance: create, read, keys, update, patch, delete and optimistic concurrency."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from persisty.errors import Conflict, NotFound, PreconditionFailed, ValidationError
from persisty.model import etag
from persisty.query import (
    F,
)
from persisty.store import AsyncDatabase, AsyncStore, Edit
from persisty.testing._concurrency import run_concurrently_async
from persisty.testing._store._async.base import AsyncStoreSuiteBase
from persisty.testing.models import Address, Color, Counter, Doc, Item, Numbered, Profile


class AsyncCrudConformance(AsyncStoreSuiteBase):
    """Single-item writes and reads of the Store contract."""

    # ---- create and read --------------------------------------------------------------

    async def test_create_and_read(self, items: AsyncStore[Item]) -> None:
        before = datetime.now(UTC)
        n = await items.create(Item(owner="ann", title="Hello", tags=["a", "b"]))
        assert n.created_at is not None and n.created_at >= before.replace(microsecond=0)
        assert n.updated_at == n.created_at
        assert n.created_at.tzinfo is not None
        key = items.key_of(n)
        assert key == str(n.id)
        got = await items.read(key)
        assert got == n
        assert etag(got) == etag(n)

    async def test_read_missing(self, items: AsyncStore[Item]) -> None:
        assert await items.read(str(uuid.uuid4())) is None

    async def test_create_duplicate_key(self, items: AsyncStore[Item]) -> None:
        n = await items.create(Item(owner="ann", title="one"))
        with pytest.raises(Conflict):
            await items.create(Item(id=n.id, owner="bob", title="two"))
        assert await items.count() == 1
        assert (await items.read(str(n.id))).title == "one"  # type: ignore[union-attr]

    async def test_unique_index(self, items: AsyncStore[Item]) -> None:
        a = await items.create(Item(owner="ann", title="a", code="c1"))
        with pytest.raises(Conflict):
            await items.create(Item(owner="bob", title="b", code="c1"))
        b = await items.create(Item(owner="bob", title="b", code="c2"))
        with pytest.raises(Conflict):
            await items.patch(str(b.id), {"code": "c1"})
        assert (await items.read(str(b.id))).code == "c2"  # type: ignore[union-attr]
        await items.patch(str(a.id), {"code": None})
        await items.patch(str(b.id), {"code": "c1"})
        await items.create(Item(owner="cy", title="c"))  # None never conflicts
        await items.create(Item(owner="dee", title="d"))
        assert await items.count() == 4

    async def test_create_invalid(self, items: AsyncStore[Item]) -> None:
        with pytest.raises(ValidationError) as e:
            await items.create(Item(owner="ann", title="x" * 101))
        assert e.value.field == "title"
        with pytest.raises(ValidationError) as e:
            await items.create(Item(owner=3, title="x"))  # type: ignore[arg-type]
        assert e.value.field == "owner"
        with pytest.raises(ValidationError) as e:
            await items.create(Item(owner="ann", title="x", tags=[1]))  # type: ignore[list-item]
        assert e.value.field == "tags"
        assert await items.count() == 0

    async def test_create_from_dict(self, items: AsyncStore[Item]) -> None:
        n = await items.create(
            {
                "owner": "ann",
                "title": "t",
                "due": "2024-02-03",  # type: ignore[arg-type]
                "color": "red",
                "amount": "1.25",
            }
        )
        assert n.due == date(2024, 2, 3) and n.color is Color.RED
        assert n.amount == Decimal("1.25")
        with pytest.raises(ValidationError) as e:
            await items.create({"owner": "ann", "title": "t", "nope": 1})  # type: ignore[arg-type]
        assert e.value.field == "nope"
        assert await items.count() == 1

    async def test_round_trip_types(self, database: AsyncDatabase) -> None:
        profiles = await self.wrap(database.store(Profile))
        p = Profile(
            id="p1",
            address=Address("Main St 1", "Zürich", None),
            history=[Address("a", "b", "c")],
            extra={"x": 1, "ü": -2},
            avatar=b"\x00\xffbin",
            seen=datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC),
        )
        created = await profiles.create(p)
        assert created == p
        got = await profiles.read("p1")
        assert got == p and etag(got) == etag(p)
        empty = await profiles.create(Profile(id="p2"))
        assert await profiles.read("p2") == empty

    # ---- keys ------------------------------------------------------------------------

    async def test_composite_key(self, database: AsyncDatabase) -> None:
        docs = await self.wrap(database.store(Doc))
        await docs.create(Doc(owner="ann", slug="home", title="Home"))
        odd = await docs.create(Doc(owner="a:b~c", slug="x:y", title="odd"))
        assert docs.key_of(odd) == "a~1b~0c:x~1y"
        assert (await docs.read("ann:home")).title == "Home"  # type: ignore[union-attr]
        assert (await docs.read("a~1b~0c:x~1y")) == odd
        assert await docs.read("ann:nothing") is None
        with pytest.raises(Conflict):
            await docs.create(Doc(owner="ann", slug="home"))
        await docs.patch("ann:home", {"views": 3})
        assert (await docs.read("ann:home")).views == 3  # type: ignore[union-attr]
        with pytest.raises(ValidationError):
            await docs.read("just-one-part")
        found = await docs.search(F.owner == "ann")
        assert [d.slug for d in found.items] == ["home"]

    async def test_wrongly_typed_keys(
        self, database: AsyncDatabase, items: AsyncStore[Item]
    ) -> None:
        with pytest.raises(ValidationError) as e:
            await items.read("not-a-uuid")
        assert e.value.field == "id"
        numbered = await self.wrap(database.store(Numbered))
        await numbered.create(Numbered(id=10, name="ten"))
        await numbered.create(Numbered(id=9, name="nine"))
        assert (await numbered.read("10")).name == "ten"  # type: ignore[union-attr]
        with pytest.raises(ValidationError):
            await numbered.read("ten")
        with pytest.raises(ValidationError):
            await numbered.read_batch(["10", "x"])
        with pytest.raises(ValidationError):
            await numbered.delete("1.5")
        # integer keys order as numbers, not as text
        assert [n.id for n in (await numbered.search()).items] == [9, 10]

    # ---- update, patch, delete -----------------------------------------------------------

    async def test_update(self, items: AsyncStore[Item]) -> None:
        n = await items.create(Item(owner="ann", title="Hello"))
        changed = dataclasses.replace(
            n, title="Hi", priority=2, created_at=datetime(2000, 1, 1, tzinfo=UTC)
        )
        u = await items.update(changed)
        assert u.title == "Hi" and u.priority == 2
        assert u.created_at == n.created_at  # generated on create, kept on update
        assert u.updated_at >= n.updated_at
        assert await items.read(str(n.id)) == u

    async def test_patch(self, items: AsyncStore[Item]) -> None:
        n = await items.create(Item(owner="ann", title="Hello", tags=["a"]))
        p = await items.patch(str(n.id), {"priority": 3, "tags": ["b", "c"], "due": "2024-03-01"})
        assert (p.priority, p.tags, p.title, p.due) == (3, ["b", "c"], "Hello", date(2024, 3, 1))
        assert await items.read(str(n.id)) == p
        with pytest.raises(ValidationError) as e:
            await items.patch(str(n.id), {"nope": 1})
        assert e.value.field == "nope"
        with pytest.raises(ValidationError) as e:
            await items.patch(str(n.id), {"id": str(uuid.uuid4())})
        assert e.value.field == "id"
        with pytest.raises(ValidationError) as e:
            await items.patch(str(n.id), {"priority": "high"})
        assert e.value.field == "priority"
        with pytest.raises(ValidationError) as e:
            await items.patch(str(n.id), {"title": "y" * 101})
        assert e.value.field == "title"
        assert await items.read(str(n.id)) == p

    async def test_patch_etags(self, items: AsyncStore[Item]) -> None:
        # etag(item) of what a patch returns is the stored etag, on every write path after it
        n = await items.create(Item(owner="ann", title="Hello"))
        key = str(n.id)
        p = await items.patch(key, {"priority": 2})
        assert etag(p) != etag(n)
        assert await items.read(key) == p
        with pytest.raises(PreconditionFailed):
            await items.update(dataclasses.replace(p, title="stale"), if_match=etag(n))
        with pytest.raises(PreconditionFailed):
            await items.delete(key, if_match=etag(n))
        u = await items.update(dataclasses.replace(p, title="fresh"), if_match=etag(p))
        p = await items.patch(key, {"title": "patched"}, if_match=etag(u))
        p = await items.patch(key, {"priority": 4})
        [r] = await items.edit_batch([Edit.patch(key, {"priority": 5}, if_match=etag(p))])
        assert r.ok and r.item is not None and r.item.priority == 5
        p = await items.patch(key, {"priority": 6})
        u = await items.update(
            dataclasses.replace(p, title="checked"),
            if_match=etag(p),
            precondition=F.priority == 6,
        )
        p = await items.patch(key, {"priority": 7})
        with pytest.raises(PreconditionFailed):
            await items.delete(key, if_match=etag(u), precondition=F.priority == 7)
        await items.delete(key, if_match=etag(p), precondition=F.priority == 7)
        assert await items.read(key) is None

    async def test_missing_keys(self, items: AsyncStore[Item]) -> None:
        ghost = Item(owner="ann", title="ghost")
        with pytest.raises(NotFound):
            await items.update(ghost)
        with pytest.raises(NotFound):
            await items.patch(str(ghost.id), {"priority": 1})
        with pytest.raises(NotFound):
            await items.delete(str(ghost.id))
        with pytest.raises(NotFound):
            await items.delete(str(ghost.id), if_match="x")
        assert await items.count() == 0

    async def test_delete(self, items: AsyncStore[Item]) -> None:
        n = await items.create(Item(owner="ann", title="Hello"))
        await items.delete(str(n.id))
        assert await items.read(str(n.id)) is None
        assert await items.count() == 0

    async def test_if_match(self, items: AsyncStore[Item]) -> None:
        n = await items.create(Item(owner="ann", title="Hello"))
        tag = etag(n)
        u = await items.update(dataclasses.replace(n, title="Hi"), if_match=tag)
        with pytest.raises(PreconditionFailed):
            await items.update(dataclasses.replace(n, title="stale"), if_match=tag)
        with pytest.raises(PreconditionFailed):
            await items.patch(str(n.id), {"priority": 9}, if_match=tag)
        with pytest.raises(PreconditionFailed):
            await items.delete(str(n.id), if_match=tag)
        assert await items.read(str(n.id)) == u
        p = await items.patch(str(n.id), {"priority": 1}, if_match=etag(u))
        await items.delete(str(n.id), if_match=etag(p))
        assert await items.read(str(n.id)) is None

    async def test_precondition(self, items: AsyncStore[Item]) -> None:
        n = await items.create(Item(owner="ann", title="Hello", priority=1))
        p = await items.patch(str(n.id), {"priority": 3}, precondition=F.priority < 3)
        with pytest.raises(PreconditionFailed):
            await items.patch(str(n.id), {"priority": 4}, precondition=F.priority < 3)
        with pytest.raises(PreconditionFailed):
            await items.update(dataclasses.replace(p, title="x"), precondition=F.owner == "bob")
        with pytest.raises(PreconditionFailed):
            await items.delete(str(n.id), precondition=F.priority == 0)
        assert await items.read(str(n.id)) == p
        with pytest.raises(ValidationError):
            await items.patch(str(n.id), {"priority": 4}, precondition=F.nope == 1)
        await items.delete(str(n.id), precondition=F.priority == 3)
        assert await items.count() == 0

    async def test_concurrent_if_match_increments(self, database: AsyncDatabase) -> None:
        counters = await self.wrap(database.store(Counter))
        await counters.create(Counter(id="c"))

        async def worker() -> int:
            retries = 0
            for _ in range(self.concurrency_increments):
                while True:
                    c = await counters.read("c")
                    assert c is not None
                    try:
                        await counters.update(
                            dataclasses.replace(c, value=c.value + 1), if_match=etag(c)
                        )
                        break
                    except PreconditionFailed:
                        retries += 1
            return retries

        await run_concurrently_async([worker] * self.concurrency_workers)
        final = await counters.read("c")
        assert final is not None
        assert final.value == self.concurrency_workers * self.concurrency_increments
