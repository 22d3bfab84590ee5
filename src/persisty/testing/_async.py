"""The conformance suite: the Store contract as tests, run against every backend and layer.

Subclass it in a test module and say how to open a database on your engine::

    class TestMyBackend(AsyncStoreConformance):
        async def open_database(self, namespace):
            return persisty.aio.connect("mine://…", namespace=namespace)

Each test gets a database with a fresh namespace; afterwards ``drop(database)`` removes what
the test stored (``database.drop()``: nothing is left behind) and the database is closed.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from persisty.errors import Conflict, NotFound, PreconditionFailed, ValidationError
from persisty.model import etag, meta_of
from persisty.query import (
    ALL,
    F,
    Filter,
    Order,
    compile_filter,
    sort_key,
    sort_spec,
    validate_filter,
)
from persisty.store import AsyncDatabase, AsyncStore, Edit
from persisty.testing._concurrency import run_concurrently_async
from persisty.testing._data import every_op_filters, filters, sample_items
from persisty.testing._secrecy._async import AsyncPageKeySecrecyConformance
from persisty.testing.models import Address, Color, Counter, Doc, Item, Numbered, Profile

ITEM = meta_of(Item)


def _expected(items: list[Item], f: Filter | None, order: Any = None) -> list[Item]:
    """What the reference evaluator says a search returns."""
    keep = compile_filter(validate_filter(f, ITEM), ITEM)
    return sorted((i for i in items if keep(i)), key=sort_key(sort_spec(ITEM, order)))


def _keys(items: list[Any]) -> list[str]:
    return [meta_of(type(i)).key_of(i) for i in items]


class AsyncStoreConformance(AsyncPageKeySecrecyConformance):
    """The Store contract. Subclasses implement :meth:`open_database`."""

    concurrency_workers = 8
    concurrency_increments = 25

    async def open_database(self, namespace: str) -> AsyncDatabase:
        """A database on the engine under test, isolated by ``namespace``."""
        raise NotImplementedError

    async def drop(self, database: AsyncDatabase) -> None:
        """Remove what a test stored (before the database is closed)."""
        await database.drop()

    async def wrap(self, store: AsyncStore[Any]) -> AsyncStore[Any]:
        """Layers under test override this to wrap the backend's store."""
        return store

    @pytest.fixture
    async def database(self) -> AsyncIterator[AsyncDatabase]:
        db = await self.open_database("t" + uuid.uuid4().hex[:12])
        try:
            yield db
        finally:
            try:
                await self.drop(db)
            finally:
                await db.close()

    @pytest.fixture
    async def items(self, database: AsyncDatabase) -> AsyncStore[Item]:
        return await self.wrap(database.store(Item))

    @pytest.fixture
    async def loaded(self, items: AsyncStore[Item]) -> tuple[AsyncStore[Item], list[Item]]:
        results = await items.edit_batch([Edit.create(i) for i in sample_items()])
        assert all(r.ok for r in results), [r for r in results if not r.ok][:1]
        return items, [r.item for r in results if r.item is not None]

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

    # ---- search and count ---------------------------------------------------------------

    async def test_search_every_op(self, loaded: tuple[AsyncStore[Item], list[Item]]) -> None:
        items, data = loaded
        wrong = []
        for f in every_op_filters():
            want = _keys(_expected(data, f))
            got = _keys((await items.search(f, limit=1000)).items)
            n = await items.count(f)
            if got != want or n != len(want):
                wrong.append((f, want, got, n))
        assert not wrong, f"{len(wrong)} filters differ from the evaluator, first: {wrong[0]}"

    async def test_filter_validation(self, items: AsyncStore[Item]) -> None:
        bad: list[tuple[Filter, str]] = [
            (F.nope == 1, "nope"),
            (F.priority.startswith("1"), "priority"),
            (F.priority == "high", "priority"),
            (F.due > "someday", "due"),
            (F.tags > "x", "tags"),
            (F.active.icontains("t"), "active"),
            (F.priority < None, "priority"),
            (F.tags.contains(3), "tags"),
        ]
        for f, field in bad:
            with pytest.raises(ValidationError) as e:
                await items.search(f)
            assert e.value.field == field, f
            with pytest.raises(ValidationError):
                await items.count(f)
        with pytest.raises(ValidationError):
            await items.search(order=[-F.nope])
        with pytest.raises(ValidationError):
            await items.search(order=[+F.tags])
        with pytest.raises(ValidationError):
            await items.search(limit=0)

    async def test_coerced_filter_values(self, loaded: tuple[AsyncStore[Item], list[Item]]) -> None:
        items, data = loaded
        as_text = await items.count(F.priority >= "2")
        want = len(_expected(data, F.priority >= 2))
        assert as_text == await items.count(F.priority >= 2) == want
        assert await items.count(F.due < "2024-01-20") == len(
            _expected(data, F.due < date(2024, 1, 20))
        )

    async def test_order_with_none(self, loaded: tuple[AsyncStore[Item], list[Item]]) -> None:
        items, data = loaded
        for order in (
            [+F.score],
            [-F.score],
            [+F.due, -F.priority],
            [-F.color, +F.title],
            [+F.owner, -F.amount],
            [-F.active, +F.body],
            [+F.title],
        ):
            got = (await items.search(order=order, limit=1000)).items
            assert _keys(got) == _keys(_expected(data, None, order)), order
        asc = (await items.search(order=[+F.score], limit=1000)).items
        assert asc[0].score is None and asc[-1].score is not None
        desc = (await items.search(order=[-F.score], limit=1000)).items
        assert desc[-1].score is None and desc[0].score is not None

    async def test_search_all(self, loaded: tuple[AsyncStore[Item], list[Item]]) -> None:
        items, data = loaded
        got = [i async for i in items.search_all(F.priority > 0, order=[-F.priority], page_size=3)]
        assert _keys(got) == _keys(_expected(data, F.priority > 0, [-F.priority]))

    async def test_paging(self, database: AsyncDatabase) -> None:
        items = await self.wrap(database.store(Item))
        created = await items.edit_batch([Edit.create(i) for i in sample_items(99, seed=3)])
        data = [r.item for r in created if r.item is not None]
        residual = F.title.iendswith("O") | (F.tags.contains("x") & ~F.body.exists())
        for f, order in ((None, [-F.priority, +F.owner]), (residual, [+F.score])):
            want = _keys(_expected(data, f, order))
            for size in range(1, 31):
                got: list[Item] = []
                page = await items.search(f, order, limit=size)
                while True:
                    assert len(page.items) <= size
                    got.extend(page.items)
                    if page.next_page_key is None:
                        break
                    assert len(page.items) == size
                    page = await items.search(f, order, limit=size, page_key=page.next_page_key)
                assert _keys(got) == want, (f, order, size)

    async def test_paging_under_writes(self, loaded: tuple[AsyncStore[Item], list[Item]]) -> None:
        items, data = loaded
        order = [+F.priority]
        seen: list[str] = []
        page = await items.search(order=order, limit=5)
        deleted: set[str] = set()
        step = 0
        while True:
            seen.extend(_keys(page.items))
            if page.next_page_key is None:
                break
            step += 1
            await items.create(Item(owner="new", title=f"n{step}", priority=step % 5 - 2))
            remaining = [k for k in _keys(data) if k not in seen and k not in deleted]
            if remaining:
                await items.delete(remaining[-1])
                deleted.add(remaining[-1])
            page = await items.search(order=order, limit=5, page_key=page.next_page_key)
        assert len(seen) == len(set(seen)), "an item was returned twice"
        survivors = {k for k in _keys(data) if k not in deleted}
        assert survivors <= set(seen), "an item present throughout was skipped"

    async def test_page_key_tampering(
        self, database: AsyncDatabase, loaded: tuple[AsyncStore[Item], list[Item]]
    ) -> None:
        items, _ = loaded
        page = await items.search(order=[+F.title], limit=3)
        key = page.next_page_key
        assert key is not None
        body, sig = key.split(".")
        other_end = "BB" if body.endswith("AA") else "AA"  # the key's bytes are random
        for forged in (
            body + "." + sig[::-1],
            body[:-2] + other_end + "." + sig,
            "garbage",
            "",
            "a.b.c",
        ):
            with pytest.raises(ValidationError) as e:
                await items.search(order=[+F.title], limit=3, page_key=forged)
            assert e.value.field == "page_key"
        with pytest.raises(ValidationError):  # another order
            await items.search(order=[-F.title], limit=3, page_key=key)
        docs = await self.wrap(database.store(Doc))
        for i in range(3):
            await docs.create(Doc(owner="o", slug=f"s{i}"))
        doc_key = (await docs.search(limit=1)).next_page_key
        assert doc_key is not None
        with pytest.raises(ValidationError):  # another store
            await items.search(limit=1, page_key=doc_key)
        other = await self.open_database("t" + uuid.uuid4().hex[:12])
        try:
            other.pages = type(other.pages)(b"another secret")
            foreign = await self.wrap(other.store(Item))
            with pytest.raises(ValidationError):  # another database
                await foreign.search(order=[+F.title], limit=3, page_key=key)
        finally:
            await other.close()

    @settings(
        max_examples=60,
        deadline=None,
        # one method, inherited by every backend's subclass: each is its own executor
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
            HealthCheck.differing_executors,
        ],
    )
    @given(data=st.data())
    async def test_random_filters_match_evaluator(
        self, loaded: tuple[AsyncStore[Item], list[Item]], data: st.DataObject
    ) -> None:
        items, stored = loaded
        f = data.draw(filters, label="filter")
        order = data.draw(
            st.sampled_from([None, [-F.priority], [+F.owner, -F.score]]), label="order"
        )
        want = _keys(_expected(stored, f, order))
        assert _keys((await items.search(f, order, limit=1000)).items) == want
        assert await items.count(f) == len(want)

    async def test_explain(self, items: AsyncStore[Item]) -> None:
        f = (F.owner == "ann") & F.title.icontains("x")
        plan = await items.explain(f, [-F.priority])
        combined = compile_filter(validate_filter(plan.native, ITEM), ITEM)
        rest = compile_filter(validate_filter(plan.residual, ITEM), ITEM)
        expected = compile_filter(validate_filter(f, ITEM), ITEM)
        for i in sample_items(30):
            assert (combined(i) and rest(i)) == expected(i)
        assert isinstance(plan.detail, str)
        assert (await items.explain()).residual is ALL or True

    # ---- batches -------------------------------------------------------------------------

    async def test_read_batch(self, items: AsyncStore[Item]) -> None:
        a = await items.create(Item(owner="ann", title="a"))
        b = await items.create(Item(owner="bob", title="b"))
        missing = str(uuid.uuid4())
        got = await items.read_batch([str(b.id), missing, str(a.id), str(b.id)])
        assert got == [b, None, a, b]
        assert await items.read_batch([]) == []

    async def test_edit_batch_atomic(self, items: AsyncStore[Item]) -> None:
        a = await items.create(Item(owner="ann", title="a"))
        b = await items.create(Item(owner="bob", title="b"))
        new = Item(owner="cy", title="c")
        results = await items.edit_batch(
            [
                Edit.create(new),
                Edit.update(dataclasses.replace(a, title="a2")),
                Edit.patch(str(b.id), {"priority": 7}),
                Edit.delete(str(a.id), if_match="stale"),
            ],
            atomic=True,
        )
        assert [r.ok for r in results] == [False, False, False, False]
        assert [r.code for r in results] == ["aborted", "aborted", "aborted", "precondition_failed"]
        assert await items.count() == 2
        assert await items.read(str(a.id)) == a and await items.read(str(b.id)) == b
        # a failure found only by the engine (duplicate key) also rolls everything back
        results = await items.edit_batch(
            [
                Edit.patch(str(b.id), {"priority": 7}),
                Edit.create(Item(id=a.id, owner="dup", title="dup")),
            ],
            atomic=True,
        )
        assert not any(r.ok for r in results)
        assert results[1].code == "conflict"
        assert await items.read(str(b.id)) == b
        results = await items.edit_batch(
            [
                Edit.create(new),
                Edit.update(dataclasses.replace(a, title="a2"), if_match=etag(a)),
                Edit.patch(str(b.id), {"priority": 7}),
                Edit.delete(str(new.id)),
            ],
            atomic=True,
        )
        assert all(r.ok for r in results), results
        assert (await items.read(str(a.id))).title == "a2"  # type: ignore[union-attr]
        assert (await items.read(str(b.id))).priority == 7  # type: ignore[union-attr]
        assert await items.read(str(new.id)) is None
        assert results[0].item is not None and results[0].item.created_at is not None

    async def test_edit_batch_not_atomic(self, items: AsyncStore[Item]) -> None:
        a = await items.create(Item(owner="ann", title="a"))
        ghost = str(uuid.uuid4())
        results = await items.edit_batch(
            [
                Edit.create(Item(owner="new", title="n")),
                Edit.patch(ghost, {"priority": 1}),
                Edit.create(Item(id=a.id, owner="dup", title="dup")),
                Edit.patch(str(a.id), {"priority": 5}),
                Edit.create(Item(owner="bad", title="z" * 101)),
                Edit.delete(str(a.id), if_match="stale"),
            ],
            atomic=False,
        )
        assert [r.ok for r in results] == [True, False, False, True, False, False]
        assert [r.code for r in results] == [
            None,
            "not_found",
            "conflict",
            None,
            "validation_error",
            "precondition_failed",
        ]
        assert results[4].field == "title"
        assert await items.count() == 2
        assert (await items.read(str(a.id))).priority == 5  # type: ignore[union-attr]

    async def test_update_all_and_delete_all(
        self, loaded: tuple[AsyncStore[Item], list[Item]]
    ) -> None:
        items, data = loaded
        f = (F.owner == "ann") | (F.priority < 0)
        n = await items.update_all(f, {"body": "bulk"})
        assert n == len(_expected(data, f))
        assert await items.count(F.body == "bulk") == n
        with pytest.raises(ValidationError):
            await items.update_all(F.owner == "bob", {"priority": "high"})
        with pytest.raises(ValidationError):
            await items.update_all(F.owner == "bob", {"nope": 1})
        assert await items.count(F.body == "bulk") == n
        gone = await items.delete_all(F.body == "bulk")
        assert gone == n
        assert await items.count() == len(data) - n
        assert await items.delete_all(F.owner == "nobody") == 0

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
