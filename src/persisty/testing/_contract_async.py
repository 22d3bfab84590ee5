"""The second step of the Store contract as tests: ``put`` (upsert), expiry and ``Increment``.

Mix it into a conformance class beside :class:`AsyncStoreConformance` (it uses the same
``open_database``, ``wrap`` and ``drop`` hooks), or use it alone::

    class TestMine(AsyncStoreConformance, AsyncPutExpiryIncrementConformance):
        async def open_database(self, namespace):
            return persisty.aio.connect("mine://…", namespace=namespace)

Time is the database's clock (``db.clock``): the expiry tests set it and move it forward,
so nothing here waits for real time to pass.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from persisty.errors import Conflict, NotFound, PreconditionFailed, ValidationError
from persisty.model import etag
from persisty.query import F
from persisty.store import AsyncDatabase, AsyncStore, Edit, Increment
from persisty.testing._concurrency import run_concurrently_async
from persisty.testing._hooks_async import AsyncEngineHooks
from persisty.testing.models import LEASE_TTL, Item, Lease, Tally


def _start() -> datetime:
    """A clock reading near the real time (engines that expire natively use their own
    clock), in whole milliseconds (what every engine keeps exactly)."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


class AsyncPutExpiryIncrementConformance(AsyncEngineHooks):
    """``put``, ``Attr(expires=True)``/``ttl`` and ``Increment`` on one engine."""

    increment_workers = 8
    increment_rounds = 25

    @pytest.fixture
    async def database(self) -> AsyncIterator[AsyncDatabase]:
        async with self.opened() as db:
            yield db

    async def _clocked(self, database: AsyncDatabase, cls: type[Any]) -> AsyncStore[Any]:
        database.clock.now = _start()
        return await self.wrap(database.store(cls))

    # ---- put ------------------------------------------------------------------------------

    async def test_put_creates_then_replaces(self, database: AsyncDatabase) -> None:
        items = await self._clocked(database, Item)
        t0 = database.clock()
        first = await items.put(Item(owner="ann", title="one"))
        assert first.created_at == t0 and first.updated_at == t0
        key = items.key_of(first)
        got = await items.read(key)
        assert got == first and etag(got) == etag(first)
        database.clock.advance(timedelta(seconds=5))
        second = await items.put(dataclasses.replace(first, title="two", created_at=None))
        assert second.title == "two"
        assert second.created_at == t0  # kept, as on update
        assert second.updated_at == t0 + timedelta(seconds=5)
        assert etag(second) != etag(first)
        again = await items.read(key)
        assert again == second and etag(again) == etag(second)
        assert await items.count() == 1
        from_dict = await items.put({"id": key, "owner": "bob", "title": "three"})
        assert from_dict.owner == "bob" and from_dict.created_at == t0
        assert await items.count() == 1

    async def test_put_if_match(self, items_put: AsyncStore[Item]) -> None:
        items = items_put
        a = await items.put(Item(owner="ann", title="a"))
        with pytest.raises(PreconditionFailed):
            await items.put(dataclasses.replace(a, title="stale"), if_match="nope")
        assert await items.read(items.key_of(a)) == a
        b = await items.put(dataclasses.replace(a, title="b"), if_match=etag(a))
        assert b.title == "b"
        with pytest.raises(PreconditionFailed):
            await items.put(dataclasses.replace(a, title="old etag"), if_match=etag(a))
        ghost = Item(owner="ghost", title="g")
        with pytest.raises(PreconditionFailed):
            await items.put(ghost, if_match=etag(a))
        assert await items.read(str(ghost.id)) is None
        assert await items.count() == 1

    @pytest.fixture
    async def items_put(self, database: AsyncDatabase) -> AsyncStore[Item]:
        return await self.wrap(database.store(Item))

    async def test_put_invalid_and_conflicting(self, items_put: AsyncStore[Item]) -> None:
        items = items_put
        a = await items.put(Item(owner="ann", title="a", code="c1"))
        with pytest.raises(ValidationError) as e:
            await items.put(dataclasses.replace(a, title="x" * 101))
        assert e.value.field == "title"
        with pytest.raises(ValidationError) as e:
            await items.put(Item(owner="ann", title="y" * 101))
        assert e.value.field == "title"
        with pytest.raises(ValidationError) as e:
            await items.put({"owner": "ann", "title": "t", "nope": 1})  # type: ignore[arg-type]
        assert e.value.field == "nope"
        b = await items.put(Item(owner="bob", title="b", code="c2"))
        with pytest.raises(Conflict):
            await items.put(Item(owner="cy", title="c", code="c1"))  # a new item, taken code
        with pytest.raises(Conflict):
            await items.put(dataclasses.replace(b, code="c1"))  # an existing one
        assert await items.read(items.key_of(a)) == a
        assert await items.read(items.key_of(b)) == b
        assert await items.count() == 2

    async def test_put_in_edit_batch(self, items_put: AsyncStore[Item]) -> None:
        items = items_put
        a = await items.create(Item(owner="ann", title="a"))
        new = Item(owner="new", title="n")
        results = await items.edit_batch(
            [
                Edit.put(new),
                Edit.put(dataclasses.replace(a, title="a2")),
                Edit.delete(str(a.id), if_match="stale"),
            ],
            atomic=True,
        )
        assert [r.code for r in results] == ["aborted", "aborted", "precondition_failed"]
        assert await items.read(str(new.id)) is None
        assert await items.read(str(a.id)) == a
        results = await items.edit_batch(
            [
                Edit.put(new),
                Edit.put(dataclasses.replace(a, title="a2"), if_match=etag(a)),
            ],
            atomic=True,
        )
        assert all(r.ok for r in results), results
        assert results[0].item is not None and results[0].item.created_at is not None
        assert (await items.read(str(a.id))).title == "a2"  # type: ignore[union-attr]
        stored = await items.read(str(new.id))
        assert stored == results[0].item and etag(stored) == etag(results[0].item)
        results = await items.edit_batch(
            [
                Edit.put(Item(owner="x", title="x")),
                Edit.put(dataclasses.replace(a, title="a3"), if_match="stale"),
                Edit.put(Item(owner="bad", title="z" * 101)),
            ],
            atomic=False,
        )
        assert [r.code for r in results] == [None, "precondition_failed", "validation_error"]
        assert await items.count() == 3

    async def test_concurrent_puts(self, database: AsyncDatabase) -> None:
        tallies = await self.wrap(database.store(Tally))

        async def worker(n: int) -> None:
            for round_ in range(5):
                await tallies.put(Tally(id="same", hits=n, label=f"{n}:{round_}"))

        await run_concurrently_async([lambda n=n: worker(n) for n in range(4)])  # type: ignore[misc]
        final = await tallies.read("same")
        assert final is not None and final.label == f"{final.hits}:4"
        assert await tallies.count() == 1

    # ---- expiry ---------------------------------------------------------------------------

    async def test_ttl_sets_expiry(self, database: AsyncDatabase) -> None:
        leases = await self._clocked(database, Lease)
        t0 = database.clock()
        a = await leases.create(Lease(id="a", owner="ann"))
        assert a.expires_at == t0 + LEASE_TTL
        assert await leases.read("a") == a
        database.clock.advance(timedelta(minutes=10))
        patched = await leases.patch("a", {"note": "x"})  # a write that does not set it
        assert patched.expires_at == t0 + timedelta(minutes=10) + LEASE_TTL
        until = t0 + timedelta(days=3)
        b = await leases.put(Lease(id="b", owner="bob", expires_at=until))
        assert b.expires_at == until
        b = await leases.patch("b", {"note": "y", "expires_at": until + timedelta(days=1)})
        assert b.expires_at == until + timedelta(days=1)
        c = await leases.update(Lease(id="a", owner="cy"))
        assert c.expires_at == database.clock() + LEASE_TTL
        assert await leases.read("a") == c

    async def test_expired_items_are_gone(self, database: AsyncDatabase) -> None:
        leases = await self._clocked(database, Lease)
        t0 = database.clock()
        far = t0 + timedelta(days=30)
        results = await leases.edit_batch(
            [
                Edit.create(Lease(id="a", owner="ann")),
                Edit.create(Lease(id="b", owner="ann", expires_at=far)),
                Edit.create(Lease(id="c", owner="bob")),
                Edit.create(Lease(id="d", owner="ann", expires_at=t0 + timedelta(minutes=30))),
            ]
        )
        assert all(r.ok for r in results), results
        assert await leases.count(F.owner == "ann") == 3
        database.clock.advance(timedelta(minutes=30))  # d expires at exactly this instant
        assert await leases.read("d") is None
        assert await leases.count() == 3
        database.clock.advance(timedelta(hours=1))
        assert await leases.read("a") is None
        assert await leases.read_batch(["a", "b", "c"]) == [None, await leases.read("b"), None]
        assert [x.id for x in (await leases.search()).items] == ["b"]
        assert [x.id for x in (await leases.search(F.owner == "ann")).items] == ["b"]
        assert await leases.count() == 1
        assert await leases.count(F.owner == "ann") == 1
        assert await leases.count(F.owner == "bob") == 0
        with pytest.raises(NotFound):
            await leases.update(Lease(id="a", owner="ann"))
        with pytest.raises(NotFound):
            await leases.patch("a", {"note": "x"})
        with pytest.raises(NotFound):
            await leases.delete("a", precondition=F.owner == "ann")
        results = await leases.edit_batch([Edit.patch("c", {"note": "x"})], atomic=False)
        assert results[0].code == "not_found"
        assert await leases.update_all(None, {"note": "bulk"}) == 1
        assert (await leases.read("b")).note == "bulk"  # type: ignore[union-attr]

    async def test_expired_keys_can_be_created_again(self, database: AsyncDatabase) -> None:
        leases = await self._clocked(database, Lease)
        for key in "abc":
            await leases.create(Lease(id=key, owner="old"))
        database.clock.advance(LEASE_TTL * 2)
        t1 = database.clock()
        a = await leases.create(Lease(id="a", owner="new"))
        assert a.created_at == t1 and a.expires_at == t1 + LEASE_TTL
        assert await leases.read("a") == a
        with pytest.raises(Conflict):
            await leases.create(Lease(id="a", owner="again"))
        b = await leases.put(Lease(id="b", owner="new"))
        assert b.created_at == t1  # created anew, not updated
        results = await leases.edit_batch([Edit.create(Lease(id="c", owner="new"))])
        assert results[0].ok, results
        assert {x.id: x.owner for x in (await leases.search()).items} == {
            "a": "new",
            "b": "new",
            "c": "new",
        }
        assert await leases.count(F.owner == "old") == 0
        assert await leases.delete_all(None) == 3
        assert await leases.count() == 0

    async def test_purge_expired(self, database: AsyncDatabase) -> None:
        leases = await self._clocked(database, Lease)
        t0 = database.clock()
        await leases.edit_batch(
            [Edit.create(Lease(id=f"l{i}", owner="o")) for i in range(5)]
            + [Edit.create(Lease(id="keep", expires_at=t0 + LEASE_TTL * 9))]
        )
        backend = database.store(Lease)  # purging is the backend's, under any layer
        assert await backend.purge_expired() == 0
        database.clock.advance(LEASE_TTL * 2)
        assert await backend.purge_expired(limit=2) == 2
        assert await backend.purge_expired() == 3
        assert await backend.purge_expired() == 0
        assert [x.id for x in (await leases.search()).items] == ["keep"]
        await leases.create(Lease(id="l0", owner="again"))
        assert await leases.count() == 2

    # ---- increments -----------------------------------------------------------------------

    async def test_increment(self, database: AsyncDatabase) -> None:
        tallies = await self.wrap(database.store(Tally))
        await tallies.create(Tally(id="t", label="x"))
        one = await tallies.patch("t", {"hits": Increment(1)})
        assert one.hits == 1
        assert await tallies.read("t") == one and etag(await tallies.read("t")) == etag(one)
        down = await tallies.patch("t", {"hits": Increment(-3), "score": Increment(0.5)})
        assert (down.hits, down.score) == (-2, 0.5)
        mixed = await tallies.patch("t", {"hits": Increment(2), "label": "y"})
        assert (mixed.hits, mixed.label) == (0, "y")
        with pytest.raises(PreconditionFailed):
            await tallies.patch("t", {"hits": Increment(1)}, if_match=etag(one))
        same = await tallies.patch("t", {"hits": Increment(5)}, if_match=etag(mixed))
        assert same.hits == 5
        with pytest.raises(PreconditionFailed):
            await tallies.patch("t", {"hits": Increment(1)}, precondition=F.hits < 5)
        capped = await tallies.patch("t", {"hits": Increment(1)}, precondition=F.hits < 6)
        assert capped.hits == 6
        assert await tallies.read("t") == capped
        with pytest.raises(NotFound):
            await tallies.patch("missing", {"hits": Increment(1)})
        for bad in ({"label": Increment(1)}, {"hits": Increment(1.5)}):
            with pytest.raises(ValidationError) as e:
                await tallies.patch("t", bad)
            assert e.value.field == next(iter(bad))
        assert await tallies.read("t") == capped

    async def test_increment_many_and_in_batches(self, database: AsyncDatabase) -> None:
        tallies = await self.wrap(database.store(Tally))
        await tallies.edit_batch(
            [Edit.create(Tally(id=f"t{i}", hits=i, label=label)) for i, label in enumerate("aabb")]
        )
        assert await tallies.update_all(F.label == "a", {"hits": Increment(10)}) == 2
        assert await tallies.update_all(F.label == "b", {"hits": Increment(-1)}) == 2
        found = {t.id: t.hits for t in (await tallies.search()).items}
        assert found == {"t0": 10, "t1": 11, "t2": 1, "t3": 2}
        results = await tallies.edit_batch(
            [
                Edit.patch("t0", {"hits": Increment(1)}),
                Edit.patch("t0", {"hits": Increment(1)}),
                Edit.patch("t3", {"score": Increment(2.5)}),
            ]
        )
        assert all(r.ok for r in results), results
        assert [r.item.hits for r in results if r.item is not None] == [11, 12, 2]
        assert (await tallies.read("t0")).hits == 12  # type: ignore[union-attr]
        assert (await tallies.read("t3")).score == 2.5  # type: ignore[union-attr]

    async def test_concurrent_increments(self, database: AsyncDatabase) -> None:
        tallies = await self.wrap(database.store(Tally))
        await tallies.create(Tally(id="c"))

        async def worker() -> None:
            for _ in range(self.increment_rounds):
                await tallies.patch("c", {"hits": Increment(1)})

        await run_concurrently_async([worker] * self.increment_workers)
        final = await tallies.read("c")
        assert final is not None
        assert final.hits == self.increment_workers * self.increment_rounds
