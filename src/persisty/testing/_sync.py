# Generated from src/persisty/testing/_async.py by scripts/generate_sync.py - do not edit.
"""The conformance suite: the Store contract as tests, run against every backend and layer.

Subclass it in a test module and say how to open a database on your engine::

    class TestMyBackend(StoreConformance):
        def open_database(self, namespace):
            return persisty.aio.connect("mine://…", namespace=namespace)

Each test gets a database with a fresh namespace; afterwards ``drop(database)`` removes what
the test stored (override it to drop tables) and the database is closed.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
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
    compile_filter,
    sort_key,
    sort_spec,
    validate_filter,
)
from persisty.store import Database, Edit, Store
from persisty.testing._concurrency import run_concurrently
from persisty.testing._data import every_op_filters, filters, sample_items
from persisty.testing.models import Address, Color, Counter, Doc, Item, Numbered, Profile

ITEM = meta_of(Item)


def _expected(items: list[Item], f: Filter | None, order: Any = None) -> list[Item]:
    """What the reference evaluator says a search returns."""
    keep = compile_filter(validate_filter(f, ITEM), ITEM)
    return sorted((i for i in items if keep(i)), key=sort_key(sort_spec(ITEM, order)))


def _keys(items: list[Any]) -> list[str]:
    return [meta_of(type(i)).key_of(i) for i in items]


class StoreConformance:
    """The Store contract. Subclasses implement :meth:`open_database`."""

    concurrency_workers = 8
    concurrency_increments = 25

    def open_database(self, namespace: str) -> Database:
        """A database on the engine under test, isolated by ``namespace``."""
        raise NotImplementedError

    def drop(self, database: Database) -> None:
        """Remove what a test stored (before the database is closed)."""
        for store in list(database._stores.values()):
            store.delete_all(None)

    def wrap(self, store: Store[Any]) -> Store[Any]:
        """Layers under test override this to wrap the backend's store."""
        return store

    @pytest.fixture
    def database(self) -> Iterator[Database]:
        db = self.open_database("t" + uuid.uuid4().hex[:12])
        try:
            yield db
        finally:
            try:
                self.drop(db)
            finally:
                db.close()

    @pytest.fixture
    def items(self, database: Database) -> Store[Item]:
        return self.wrap(database.store(Item))

    @pytest.fixture
    def loaded(self, items: Store[Item]) -> tuple[Store[Item], list[Item]]:
        results = items.edit_batch([Edit.create(i) for i in sample_items()])
        assert all(r.ok for r in results), [r for r in results if not r.ok][:1]
        return items, [r.item for r in results]

    # ---- create and read --------------------------------------------------------------

    def test_create_and_read(self, items: Store[Item]) -> None:
        before = datetime.now(UTC)
        n = items.create(Item(owner="ann", title="Hello", tags=["a", "b"]))
        assert n.created_at is not None and n.created_at >= before.replace(microsecond=0)
        assert n.updated_at == n.created_at
        assert n.created_at.tzinfo is not None
        key = items.key_of(n)
        assert key == str(n.id)
        got = items.read(key)
        assert got == n
        assert etag(got) == etag(n)

    def test_read_missing(self, items: Store[Item]) -> None:
        assert items.read(str(uuid.uuid4())) is None

    def test_create_duplicate_key(self, items: Store[Item]) -> None:
        n = items.create(Item(owner="ann", title="one"))
        with pytest.raises(Conflict):
            items.create(Item(id=n.id, owner="bob", title="two"))
        assert items.count() == 1
        assert (items.read(str(n.id))).title == "one"  # type: ignore[union-attr]

    def test_unique_index(self, items: Store[Item]) -> None:
        a = items.create(Item(owner="ann", title="a", code="c1"))
        with pytest.raises(Conflict):
            items.create(Item(owner="bob", title="b", code="c1"))
        b = items.create(Item(owner="bob", title="b", code="c2"))
        with pytest.raises(Conflict):
            items.patch(str(b.id), {"code": "c1"})
        assert (items.read(str(b.id))).code == "c2"  # type: ignore[union-attr]
        items.patch(str(a.id), {"code": None})
        items.patch(str(b.id), {"code": "c1"})
        items.create(Item(owner="cy", title="c"))  # None never conflicts
        items.create(Item(owner="dee", title="d"))
        assert items.count() == 4

    def test_create_invalid(self, items: Store[Item]) -> None:
        with pytest.raises(ValidationError) as e:
            items.create(Item(owner="ann", title="x" * 101))
        assert e.value.field == "title"
        with pytest.raises(ValidationError) as e:
            items.create(Item(owner=3, title="x"))  # type: ignore[arg-type]
        assert e.value.field == "owner"
        with pytest.raises(ValidationError) as e:
            items.create(Item(owner="ann", title="x", tags=[1]))  # type: ignore[list-item]
        assert e.value.field == "tags"
        assert items.count() == 0

    def test_create_from_dict(self, items: Store[Item]) -> None:
        n = items.create({"owner": "ann", "title": "t", "due": "2024-02-03",  # type: ignore[arg-type]
                                "color": "red", "amount": "1.25"})
        assert n.due == date(2024, 2, 3) and n.color is Color.RED
        assert n.amount == Decimal("1.25")
        with pytest.raises(ValidationError) as e:
            items.create({"owner": "ann", "title": "t", "nope": 1})  # type: ignore[arg-type]
        assert e.value.field == "nope"
        assert items.count() == 1

    def test_round_trip_types(self, database: Database) -> None:
        profiles = self.wrap(database.store(Profile))
        p = Profile(id="p1", address=Address("Main St 1", "Zürich", None),
                    history=[Address("a", "b", "c")], extra={"x": 1, "ü": -2},
                    avatar=b"\x00\xffbin", seen=datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC))
        created = profiles.create(p)
        assert created == p
        got = profiles.read("p1")
        assert got == p and etag(got) == etag(p)
        empty = profiles.create(Profile(id="p2"))
        assert profiles.read("p2") == empty

    # ---- keys ------------------------------------------------------------------------

    def test_composite_key(self, database: Database) -> None:
        docs = self.wrap(database.store(Doc))
        docs.create(Doc(owner="ann", slug="home", title="Home"))
        odd = docs.create(Doc(owner="a:b~c", slug="x:y", title="odd"))
        assert docs.key_of(odd) == "a~1b~0c:x~1y"
        assert (docs.read("ann:home")).title == "Home"  # type: ignore[union-attr]
        assert (docs.read("a~1b~0c:x~1y")) == odd
        assert docs.read("ann:nothing") is None
        with pytest.raises(Conflict):
            docs.create(Doc(owner="ann", slug="home"))
        docs.patch("ann:home", {"views": 3})
        assert (docs.read("ann:home")).views == 3  # type: ignore[union-attr]
        with pytest.raises(ValidationError):
            docs.read("just-one-part")
        found = docs.search(F.owner == "ann")
        assert [d.slug for d in found.items] == ["home"]

    def test_wrongly_typed_keys(self, database: Database, items: Store[Item]
                                      ) -> None:
        with pytest.raises(ValidationError) as e:
            items.read("not-a-uuid")
        assert e.value.field == "id"
        numbered = self.wrap(database.store(Numbered))
        numbered.create(Numbered(id=10, name="ten"))
        numbered.create(Numbered(id=9, name="nine"))
        assert (numbered.read("10")).name == "ten"  # type: ignore[union-attr]
        with pytest.raises(ValidationError):
            numbered.read("ten")
        with pytest.raises(ValidationError):
            numbered.read_batch(["10", "x"])
        with pytest.raises(ValidationError):
            numbered.delete("1.5")
        # integer keys order as numbers, not as text
        assert [n.id for n in (numbered.search()).items] == [9, 10]

    # ---- update, patch, delete -----------------------------------------------------------

    def test_update(self, items: Store[Item]) -> None:
        n = items.create(Item(owner="ann", title="Hello"))
        changed = dataclasses.replace(n, title="Hi", priority=2,
                                      created_at=datetime(2000, 1, 1, tzinfo=UTC))
        u = items.update(changed)
        assert u.title == "Hi" and u.priority == 2
        assert u.created_at == n.created_at  # generated on create, kept on update
        assert u.updated_at >= n.updated_at
        assert items.read(str(n.id)) == u

    def test_patch(self, items: Store[Item]) -> None:
        n = items.create(Item(owner="ann", title="Hello", tags=["a"]))
        p = items.patch(str(n.id), {"priority": 3, "tags": ["b", "c"], "due": "2024-03-01"})
        assert (p.priority, p.tags, p.title, p.due) == (3, ["b", "c"], "Hello", date(2024, 3, 1))
        assert items.read(str(n.id)) == p
        with pytest.raises(ValidationError) as e:
            items.patch(str(n.id), {"nope": 1})
        assert e.value.field == "nope"
        with pytest.raises(ValidationError) as e:
            items.patch(str(n.id), {"id": str(uuid.uuid4())})
        assert e.value.field == "id"
        with pytest.raises(ValidationError) as e:
            items.patch(str(n.id), {"priority": "high"})
        assert e.value.field == "priority"
        with pytest.raises(ValidationError) as e:
            items.patch(str(n.id), {"title": "y" * 101})
        assert e.value.field == "title"
        assert items.read(str(n.id)) == p

    def test_missing_keys(self, items: Store[Item]) -> None:
        ghost = Item(owner="ann", title="ghost")
        with pytest.raises(NotFound):
            items.update(ghost)
        with pytest.raises(NotFound):
            items.patch(str(ghost.id), {"priority": 1})
        with pytest.raises(NotFound):
            items.delete(str(ghost.id))
        with pytest.raises(NotFound):
            items.delete(str(ghost.id), if_match="x")
        assert items.count() == 0

    def test_delete(self, items: Store[Item]) -> None:
        n = items.create(Item(owner="ann", title="Hello"))
        items.delete(str(n.id))
        assert items.read(str(n.id)) is None
        assert items.count() == 0

    def test_if_match(self, items: Store[Item]) -> None:
        n = items.create(Item(owner="ann", title="Hello"))
        tag = etag(n)
        u = items.update(dataclasses.replace(n, title="Hi"), if_match=tag)
        with pytest.raises(PreconditionFailed):
            items.update(dataclasses.replace(n, title="stale"), if_match=tag)
        with pytest.raises(PreconditionFailed):
            items.patch(str(n.id), {"priority": 9}, if_match=tag)
        with pytest.raises(PreconditionFailed):
            items.delete(str(n.id), if_match=tag)
        assert items.read(str(n.id)) == u
        p = items.patch(str(n.id), {"priority": 1}, if_match=etag(u))
        items.delete(str(n.id), if_match=etag(p))
        assert items.read(str(n.id)) is None

    def test_precondition(self, items: Store[Item]) -> None:
        n = items.create(Item(owner="ann", title="Hello", priority=1))
        p = items.patch(str(n.id), {"priority": 3}, precondition=F.priority < 3)
        with pytest.raises(PreconditionFailed):
            items.patch(str(n.id), {"priority": 4}, precondition=F.priority < 3)
        with pytest.raises(PreconditionFailed):
            items.update(dataclasses.replace(p, title="x"), precondition=F.owner == "bob")
        with pytest.raises(PreconditionFailed):
            items.delete(str(n.id), precondition=F.priority == 0)
        assert items.read(str(n.id)) == p
        with pytest.raises(ValidationError):
            items.patch(str(n.id), {"priority": 4}, precondition=F.nope == 1)
        items.delete(str(n.id), precondition=F.priority == 3)
        assert items.count() == 0

    def test_concurrent_if_match_increments(self, database: Database) -> None:
        counters = self.wrap(database.store(Counter))
        counters.create(Counter(id="c"))

        def worker() -> int:
            retries = 0
            for _ in range(self.concurrency_increments):
                while True:
                    c = counters.read("c")
                    assert c is not None
                    try:
                        counters.update(dataclasses.replace(c, value=c.value + 1),
                                              if_match=etag(c))
                        break
                    except PreconditionFailed:
                        retries += 1
            return retries

        run_concurrently([worker] * self.concurrency_workers)
        final = counters.read("c")
        assert final is not None
        assert final.value == self.concurrency_workers * self.concurrency_increments

    # ---- search and count ---------------------------------------------------------------

    def test_search_every_op(self, loaded: tuple[Store[Item], list[Item]]) -> None:
        items, data = loaded
        wrong = []
        for f in every_op_filters():
            want = _keys(_expected(data, f))
            got = _keys((items.search(f, limit=1000)).items)
            n = items.count(f)
            if got != want or n != len(want):
                wrong.append((f, want, got, n))
        assert not wrong, f"{len(wrong)} filters differ from the evaluator, first: {wrong[0]}"

    def test_filter_validation(self, items: Store[Item]) -> None:
        bad: list[tuple[Filter, str]] = [
            (F.nope == 1, "nope"), (F.priority.startswith("1"), "priority"),
            (F.priority == "high", "priority"), (F.due > "someday", "due"),
            (F.tags > "x", "tags"), (F.active.icontains("t"), "active"),
            (F.priority < None, "priority"), (F.tags.contains(3), "tags"),
        ]
        for f, field in bad:
            with pytest.raises(ValidationError) as e:
                items.search(f)
            assert e.value.field == field, f
            with pytest.raises(ValidationError):
                items.count(f)
        with pytest.raises(ValidationError):
            items.search(order=[-F.nope])
        with pytest.raises(ValidationError):
            items.search(order=[+F.tags])
        with pytest.raises(ValidationError):
            items.search(limit=0)

    def test_coerced_filter_values(self, loaded: tuple[Store[Item], list[Item]]
                                         ) -> None:
        items, data = loaded
        as_text = items.count(F.priority >= "2")
        assert as_text == items.count(F.priority >= 2) == len(_expected(data, F.priority >= 2))
        assert items.count(F.due < "2024-01-20") == len(
            _expected(data, F.due < date(2024, 1, 20)))

    def test_order_with_none(self, loaded: tuple[Store[Item], list[Item]]) -> None:
        items, data = loaded
        for order in ([+F.score], [-F.score], [+F.due, -F.priority], [-F.color, +F.title],
                      [+F.owner, -F.amount], [-F.active, +F.body], [+F.title]):
            got = (items.search(order=order, limit=1000)).items
            assert _keys(got) == _keys(_expected(data, None, order)), order
        asc = (items.search(order=[+F.score], limit=1000)).items
        assert asc[0].score is None and asc[-1].score is not None
        desc = (items.search(order=[-F.score], limit=1000)).items
        assert desc[-1].score is None and desc[0].score is not None

    def test_search_all(self, loaded: tuple[Store[Item], list[Item]]) -> None:
        items, data = loaded
        got = [i for i in items.search_all(F.priority > 0, order=[-F.priority], page_size=3)]
        assert _keys(got) == _keys(_expected(data, F.priority > 0, [-F.priority]))

    def test_paging(self, database: Database) -> None:
        items = self.wrap(database.store(Item))
        data = [r.item for r in items.edit_batch(
            [Edit.create(i) for i in sample_items(99, seed=3)])]
        residual = F.title.iendswith("O") | (F.tags.contains("x") & ~F.body.exists())
        for f, order in ((None, [-F.priority, +F.owner]), (residual, [+F.score])):
            want = _keys(_expected(data, f, order))
            for size in range(1, 31):
                got: list[Item] = []
                page = items.search(f, order, limit=size)
                while True:
                    assert len(page.items) <= size
                    got.extend(page.items)
                    if page.next_page_key is None:
                        break
                    assert len(page.items) == size
                    page = items.search(f, order, limit=size, page_key=page.next_page_key)
                assert _keys(got) == want, (f, order, size)

    def test_paging_under_writes(self, loaded: tuple[Store[Item], list[Item]]
                                       ) -> None:
        items, data = loaded
        order = [+F.priority]
        seen: list[str] = []
        page = items.search(order=order, limit=5)
        deleted: set[str] = set()
        step = 0
        while True:
            seen.extend(_keys(page.items))
            if page.next_page_key is None:
                break
            step += 1
            items.create(Item(owner="new", title=f"n{step}", priority=step % 5 - 2))
            remaining = [k for k in _keys(data) if k not in seen and k not in deleted]
            if remaining:
                items.delete(remaining[-1])
                deleted.add(remaining[-1])
            page = items.search(order=order, limit=5, page_key=page.next_page_key)
        assert len(seen) == len(set(seen)), "an item was returned twice"
        survivors = {k for k in _keys(data) if k not in deleted}
        assert survivors <= set(seen), "an item present throughout was skipped"

    def test_page_key_tampering(self, database: Database,
                                      loaded: tuple[Store[Item], list[Item]]) -> None:
        items, _ = loaded
        page = items.search(order=[+F.title], limit=3)
        key = page.next_page_key
        assert key is not None
        body, sig = key.split(".")
        for forged in (body + "." + sig[::-1], body[:-2] + "AA." + sig, "garbage", "", "a.b.c"):
            with pytest.raises(ValidationError) as e:
                items.search(order=[+F.title], limit=3, page_key=forged)
            assert e.value.field == "page_key"
        with pytest.raises(ValidationError):  # another order
            items.search(order=[-F.title], limit=3, page_key=key)
        docs = self.wrap(database.store(Doc))
        for i in range(3):
            docs.create(Doc(owner="o", slug=f"s{i}"))
        doc_key = (docs.search(limit=1)).next_page_key
        assert doc_key is not None
        with pytest.raises(ValidationError):  # another store
            items.search(limit=1, page_key=doc_key)
        other = self.open_database("t" + uuid.uuid4().hex[:12])
        try:
            other.pages = type(other.pages)(b"another secret")
            foreign = self.wrap(other.store(Item))
            with pytest.raises(ValidationError):  # another database
                foreign.search(order=[+F.title], limit=3, page_key=key)
        finally:
            other.close()

    @settings(max_examples=60, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture,
                                     HealthCheck.too_slow])
    @given(data=st.data())
    def test_random_filters_match_evaluator(
        self, loaded: tuple[Store[Item], list[Item]], data: st.DataObject
    ) -> None:
        items, stored = loaded
        f = data.draw(filters, label="filter")
        order = data.draw(st.sampled_from([None, [-F.priority], [+F.owner, -F.score]]),
                          label="order")
        want = _keys(_expected(stored, f, order))
        assert _keys((items.search(f, order, limit=1000)).items) == want
        assert items.count(f) == len(want)

    def test_explain(self, items: Store[Item]) -> None:
        f = (F.owner == "ann") & F.title.icontains("x")
        plan = items.explain(f, [-F.priority])
        combined = compile_filter(validate_filter(plan.native, ITEM), ITEM)
        rest = compile_filter(validate_filter(plan.residual, ITEM), ITEM)
        expected = compile_filter(validate_filter(f, ITEM), ITEM)
        for i in sample_items(30):
            assert (combined(i) and rest(i)) == expected(i)
        assert isinstance(plan.detail, str)
        assert (items.explain()).residual is ALL or True

    # ---- batches -------------------------------------------------------------------------

    def test_read_batch(self, items: Store[Item]) -> None:
        a = items.create(Item(owner="ann", title="a"))
        b = items.create(Item(owner="bob", title="b"))
        missing = str(uuid.uuid4())
        got = items.read_batch([str(b.id), missing, str(a.id), str(b.id)])
        assert got == [b, None, a, b]
        assert items.read_batch([]) == []

    def test_edit_batch_atomic(self, items: Store[Item]) -> None:
        a = items.create(Item(owner="ann", title="a"))
        b = items.create(Item(owner="bob", title="b"))
        new = Item(owner="cy", title="c")
        results = items.edit_batch([
            Edit.create(new),
            Edit.update(dataclasses.replace(a, title="a2")),
            Edit.patch(str(b.id), {"priority": 7}),
            Edit.delete(str(a.id), if_match="stale"),
        ], atomic=True)
        assert [r.ok for r in results] == [False, False, False, False]
        assert [r.code for r in results] == ["aborted", "aborted", "aborted",
                                             "precondition_failed"]
        assert items.count() == 2
        assert items.read(str(a.id)) == a and items.read(str(b.id)) == b
        # a failure found only by the engine (duplicate key) also rolls everything back
        results = items.edit_batch([
            Edit.patch(str(b.id), {"priority": 7}),
            Edit.create(Item(id=a.id, owner="dup", title="dup")),
        ], atomic=True)
        assert not any(r.ok for r in results)
        assert results[1].code == "conflict"
        assert items.read(str(b.id)) == b
        results = items.edit_batch([
            Edit.create(new),
            Edit.update(dataclasses.replace(a, title="a2"), if_match=etag(a)),
            Edit.patch(str(b.id), {"priority": 7}),
            Edit.delete(str(new.id)),
        ], atomic=True)
        assert all(r.ok for r in results), results
        assert (items.read(str(a.id))).title == "a2"  # type: ignore[union-attr]
        assert (items.read(str(b.id))).priority == 7  # type: ignore[union-attr]
        assert items.read(str(new.id)) is None
        assert results[0].item is not None and results[0].item.created_at is not None

    def test_edit_batch_not_atomic(self, items: Store[Item]) -> None:
        a = items.create(Item(owner="ann", title="a"))
        ghost = str(uuid.uuid4())
        results = items.edit_batch([
            Edit.create(Item(owner="new", title="n")),
            Edit.patch(ghost, {"priority": 1}),
            Edit.create(Item(id=a.id, owner="dup", title="dup")),
            Edit.patch(str(a.id), {"priority": 5}),
            Edit.create(Item(owner="bad", title="z" * 101)),
            Edit.delete(str(a.id), if_match="stale"),
        ], atomic=False)
        assert [r.ok for r in results] == [True, False, False, True, False, False]
        assert [r.code for r in results] == [None, "not_found", "conflict", None,
                                             "validation_error", "precondition_failed"]
        assert results[4].field == "title"
        assert items.count() == 2
        assert (items.read(str(a.id))).priority == 5  # type: ignore[union-attr]

    def test_update_all_and_delete_all(self, loaded: tuple[Store[Item], list[Item]]
                                             ) -> None:
        items, data = loaded
        f = (F.owner == "ann") | (F.priority < 0)
        n = items.update_all(f, {"body": "bulk"})
        assert n == len(_expected(data, f))
        assert items.count(F.body == "bulk") == n
        with pytest.raises(ValidationError):
            items.update_all(F.owner == "bob", {"priority": "high"})
        with pytest.raises(ValidationError):
            items.update_all(F.owner == "bob", {"nope": 1})
        assert items.count(F.body == "bulk") == n
        gone = items.delete_all(F.body == "bulk")
        assert gone == n
        assert items.count() == len(data) - n
        assert items.delete_all(F.owner == "nobody") == 0

    # ---- isolation -----------------------------------------------------------------------

    def test_namespaces_isolated(self, database: Database,
                                       items: Store[Item]) -> None:
        items.create(Item(owner="ann", title="mine"))
        other = self.open_database("t" + uuid.uuid4().hex[:12])
        try:
            theirs = self.wrap(other.store(Item))
            assert theirs.count() == 0
            t = theirs.create(Item(owner="bob", title="theirs"))
            assert items.read(str(t.id)) is None
            assert items.count() == 1
            assert [i.title for i in (theirs.search()).items] == ["theirs"]
        finally:
            self.drop(other)
            other.close()


__all__ = []
