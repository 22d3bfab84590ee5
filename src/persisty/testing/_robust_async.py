"""The robustness suite: nothing lost, nothing torn, no server error for a client's value.

Subclass it beside :class:`AsyncStoreConformance` and say how to open a database::

    class TestMineRobust(AsyncRobustnessConformance):
        async def open_database(self, namespace):
            return persisty.aio.connect("mine://…", namespace=namespace)

It checks that ``drop`` (of one store and of a namespace) leaves nothing behind on the
engine (``footprint()`` is empty afterwards); that NaN, infinities and signalling NaNs,
datetimes at the ends of the range, a 2 MB key and 1,000-deep nesting (filters,
preconditions, documents) are refused with a ``ValidationError`` naming the field or stored
exactly, and never break the database; that ``@stored`` classes inherit from stored,
plain and dataclass bases; and that readers see an atomic batch whole or not at all, while
it is written and after its writer was killed (from another process when the engine is
shared between processes, see :meth:`process_url`).
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from persisty.errors import NotFound, ValidationError
from persisty.model import Attr, meta_of, stored
from persisty.query import And, F, Filter, Or
from persisty.store import AsyncDatabase, AsyncStore, AsyncStoreBase, Edit
from persisty.testing._torn_async import AsyncTornBatchConformance
from persisty.testing.models import Animal, Dog, Item, Measure, Pet

DEPTH = 1000
BIG_KEY = "k" * (2 * 1024 * 1024)


def _deep_filter(depth: int) -> Filter:
    """``depth`` levels of alternating And/Or (they do not flatten)."""
    f: Filter = F.id == "x"
    for i in range(depth):
        f = And((f, F.id != "y")) if i % 2 else Or((f, F.id == "z"))
    return f


def _deep_doc(depth: int) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    for _ in range(depth):
        doc = {"a": doc}
    return doc


def _depth_of(doc: Any) -> int:
    depth = 0
    while isinstance(doc, dict) and doc:
        doc = doc["a"]
        depth += 1
    return depth


class AsyncRobustnessConformance(AsyncTornBatchConformance):
    """Drop, hostile values, inheritance and torn batches. Subclasses implement
    :meth:`open_database`."""

    @pytest.fixture
    async def database(self) -> AsyncIterator[AsyncDatabase]:
        db = await self.open_database("r" + os.urandom(6).hex())
        try:
            yield db
        finally:
            try:
                await db.drop()
            finally:
                await db.close()

    # ---- drop ----------------------------------------------------------------------------

    async def _fill(self, database: AsyncDatabase) -> None:
        items = database.store(Item)
        await items.edit_batch(
            [Edit.create(Item(owner="ann", title=f"t{i}", code=f"c{i}")) for i in range(5)]
        )
        measures = database.store(Measure)
        for i in range(3):
            await measures.create(Measure(id=f"m{i}", value=float(i)))

    async def test_drop_store_leaves_nothing(self, database: AsyncDatabase) -> None:
        await self._fill(database)
        assert await database.footprint(Item)
        assert await database.footprint(Measure)
        await database.drop(Item)
        assert await database.footprint(Item) == []
        assert await database.footprint(Measure), "drop(Item) must leave other stores alone"
        assert await database.store(Measure).count() == 3
        # the store works again afterwards, empty, with its unique index
        items = database.store(Item)
        assert await items.count() == 0
        await items.create(Item(owner="bob", title="again", code="c0"))
        assert await items.count() == 1
        await database.drop(Measure)
        assert await database.footprint(Measure) == []
        # sequence counters are gone too: numbering starts over
        again = await database.store(Measure).create(Measure(id="m9"))
        assert again.serial == 1

    async def test_drop_namespace_leaves_nothing(self, database: AsyncDatabase) -> None:
        await self._fill(database)
        await database.drop()
        assert await database.footprint() == []
        assert await database.footprint(Item) == []
        assert await database.store(Item).count() == 0

    async def test_drop_namespace_drops_stores_it_never_opened(
        self, database: AsyncDatabase
    ) -> None:
        """``drop()`` leaves nothing of any store of the namespace, also of those another
        database object (another process) opened and this one never did."""
        if self.process_url(database) is None:
            return  # the engine lives in this database object: nothing else can open it
        writer = await self.open_database(database.namespace or "")
        try:
            await self._fill(writer)
            assert await writer.footprint()
        finally:
            await writer.close()
        await database.drop()  # this object opened no store
        assert await database.footprint() == []
        check = await self.open_database(database.namespace or "")
        try:
            assert await check.footprint(Item) == []
            assert await check.footprint(Measure) == []
            assert await check.store(Item).count() == 0
            again = await check.store(Measure).create(Measure(id="m9"))
            assert again.serial == 1  # the counters went too
            await check.drop()
        finally:
            await check.close()

    # ---- numbers -------------------------------------------------------------------------

    async def _still_works(self, database: AsyncDatabase) -> None:
        """The database survived: a write and reads on it still succeed."""
        store = database.store(Measure)
        key = "ok-" + os.urandom(4).hex()
        made = await store.create(Measure(id=key, value=1.5, amount=Decimal("2.25")))
        assert await store.read(key) == made
        assert await store.count(F.id == key) == 1

    async def test_non_finite_numbers_are_refused(self, database: AsyncDatabase) -> None:
        store = database.store(Measure)
        bad: list[tuple[str, Any]] = [
            ("value", math.nan),
            ("value", math.inf),
            ("value", -math.inf),
            ("amount", Decimal("NaN")),
            ("amount", Decimal("sNaN")),
            ("amount", Decimal("Infinity")),
            ("amount", Decimal("-Infinity")),
        ]
        await store.create(Measure(id="base", value=1.0, amount=Decimal(1)))
        for name, value in bad:
            with pytest.raises(ValidationError) as e:
                await store.create(Measure(id=f"x-{name}", **{name: value}))
            assert e.value.field == name
            with pytest.raises(ValidationError) as e:
                await store.create({"id": f"y-{name}", name: str(value)})  # type: ignore[arg-type]
            assert e.value.field == name
            with pytest.raises(ValidationError) as e:
                await store.patch("base", {name: value})
            assert e.value.field == name
            for f in (F[name] >= value, F[name] < value, F[name] == value, F[name].in_([value, 1])):
                with pytest.raises(ValidationError) as e:
                    await store.search(f)
                assert e.value.field == name
                with pytest.raises(ValidationError):
                    await store.count(f)
        for f in (F.value >= None, F.amount < None):
            with pytest.raises(ValidationError):
                await store.search(f)
        assert await store.read("base") == Measure(
            id="base", value=1.0, amount=Decimal(1), serial=1
        )
        assert await store.count() == 1
        await self._still_works(database)

    # ---- datetimes -----------------------------------------------------------------------

    async def test_extreme_datetimes(self, database: AsyncDatabase) -> None:
        store = database.store(Measure)
        values = [
            datetime.min.replace(tzinfo=UTC),
            datetime.max.replace(tzinfo=UTC),
            datetime(1, 1, 1, 12, tzinfo=timezone(timedelta(hours=5))),
            datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=5))),
            datetime(9999, 12, 31, 23, tzinfo=timezone(timedelta(hours=-5))),
            datetime(1000, 1, 1, tzinfo=UTC),
            datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
            datetime(2038, 1, 19, 3, 14, 8, tzinfo=UTC),
            datetime(9999, 12, 31, tzinfo=UTC),
        ]
        for i, value in enumerate(values):
            key = f"d{i}"
            try:
                made = await store.create(Measure(id=key, at=value))
            except ValidationError as e:
                assert e.field == "at", e
                assert await store.read(key) is None
            else:
                assert made.at == value
                assert await store.read(key) == made
                found = await store.search(F.at == value)
                assert [m.id for m in found.items] == [key]
                assert key in [m.id for m in (await store.search(F.at >= value)).items]
                assert key in [m.id for m in (await store.search(F.at <= value)).items]
            for f in (F.at >= value, F.at < value, F.at == value):
                try:
                    await store.count(f)
                except ValidationError as e:
                    assert e.field == "at", e
        await self._still_works(database)

    # ---- sizes and depths ----------------------------------------------------------------

    async def test_two_megabyte_key(self, database: AsyncDatabase) -> None:
        store = database.store(Measure)
        try:
            made = await store.create(Measure(id=BIG_KEY, value=1.0))
        except ValidationError as e:  # too long for the engine's key: the error names it
            assert e.field == "id", e
            assert await store.count() == 0
        else:
            got = await store.read(BIG_KEY)
            assert got is not None and got == made
            assert await store.count(F.id == BIG_KEY) == 1
            await store.delete(BIG_KEY)
        try:
            assert await store.read(BIG_KEY) is None
            assert await store.read_batch([BIG_KEY, "nope"]) == [None, None]
            assert await store.count(F.id == BIG_KEY) == 0
        except ValidationError as e:
            assert e.field == "id", e
        for change in ({"value": 2.0},):
            try:
                await store.patch(BIG_KEY, change)
            except ValidationError as e:
                assert e.field == "id", e
            except NotFound:
                pass
            else:
                raise AssertionError("patched an item that does not exist")
        await self._still_works(database)

    async def test_deeply_nested_values(self, database: AsyncDatabase) -> None:
        store = database.store(Measure)
        await store.create(Measure(id="base"))
        deep = _deep_filter(DEPTH)
        for call in (
            lambda: store.search(deep),
            lambda: store.count(deep),
            lambda: store.patch("base", {"value": 2.0}, precondition=deep),
            lambda: store.delete("base", precondition=deep),
            lambda: store.delete_all(deep),
            lambda: store.update_all(deep, {"value": 3.0}),
        ):
            with pytest.raises(ValidationError):
                await call()
        assert (await store.read("base")) == Measure(id="base", serial=1)
        # a shallow enough filter works
        assert await store.count(_deep_filter(20)) == 0
        for how in ("item", "builtins"):
            key = f"deep-{how}"
            source: Any = (
                Measure(id=key, data=_deep_doc(DEPTH))
                if how == "item"
                else {"id": key, "data": _deep_doc(DEPTH)}
            )
            try:
                await store.create(source)
            except ValidationError:
                assert await store.read(key) is None
            else:
                got = await store.read(key)
                assert got is not None and _depth_of(got.data) == DEPTH
        await self._still_works(database)

    # ---- restore -------------------------------------------------------------------------

    async def test_restore_advances_sequences(self, database: AsyncDatabase) -> None:
        """Items restored exactly (with their sequence numbers, as ``persisty import`` does)
        move the sequence past them: later creates never reuse a number."""
        store = database.store(Measure)
        assert isinstance(store, AsyncStoreBase)  # every backend's stores restore
        made = [await store.create(Measure(id=f"m{i}")) for i in range(3)]
        assert [m.serial for m in made] == [1, 2, 3]
        restored = [Measure(id=f"r{i}", value=float(i), serial=40 + i) for i in range(10)]
        results = await store.restore(restored)
        assert all(r.ok for r in results), results[:1]
        assert await store.read("r9") == restored[9]  # kept exactly
        after = await store.create(Measure(id="after"))
        assert after.serial is not None and after.serial > 49, after
        serials = [m.serial for m in await _all(store)]
        assert len(serials) == len(set(serials)) == 14  # no number used twice
        # restoring smaller numbers never moves a sequence back
        await store.restore([Measure(id="low", serial=2)])
        assert (await store.create(Measure(id="later"))).serial > after.serial

    # ---- one shape per store name --------------------------------------------------------

    async def test_one_shape_per_store_name(self, database: AsyncDatabase) -> None:
        measures = database.store(Measure)
        await measures.create(Measure(id="m1", value=1.0))

        @stored(name="measure")
        class Reshaped:  # the same store name, other attributes
            id: str
            value: str = ""

        with pytest.raises(ValidationError) as e:
            database.store(Reshaped)
        text = str(e.value)
        assert "'measure'" in text and "Measure" in text and "Reshaped" in text, text
        assert "value: float | None in Measure, str in Reshaped" in text, text

        @stored(name="measure")
        class Measure2:  # declared again with the same shape (a re-run notebook cell)
            id: str
            value: float | None = None
            amount: Decimal | None = None
            at: datetime | None = None
            data: dict[str, Any] = Attr(default_factory=dict)
            serial: int | None = Attr(generated="sequence", default=None)

        again = database.store(Measure2)
        assert [m.id for m in (await again.search()).items] == ["m1"]
        assert await measures.count() == 1  # nothing changed by the refused open

    # ---- inheritance ---------------------------------------------------------------------

    async def test_inheritance(self, database: AsyncDatabase) -> None:
        assert [f.name for f in dataclasses.fields(Dog)] == ["id", "name", "legs", "breed"]
        assert meta_of(Dog).name == "dog" and meta_of(Dog).key.attrs == ("id",)
        animals, dogs, pets = (database.store(Animal), database.store(Dog), database.store(Pet))
        rex = await dogs.create(Dog(id="rex", name="Rex", breed="lab"))
        assert await dogs.read("rex") == rex and rex.legs == 4
        await animals.create(Animal(id="cat", name="Tom"))
        assert await animals.count() == 1 and await dogs.count() == 1  # a store each
        assert await animals.read("rex") is None
        assert [d.id for d in (await dogs.search(F.legs == 4)).items] == ["rex"]
        with pytest.raises(ValidationError) as e:
            await dogs.create(Dog(id="long", name="x" * 21))
        assert e.value.field == "name"
        with pytest.raises(ValidationError) as e:
            await dogs.create(Dog(id="bad", legs=-1))
        assert e.value.field == "legs"
        assert (await dogs.patch("rex", {"legs": 3})).legs == 3
        # type checkers do not see a plain base's attributes as dataclass fields
        note: dict[str, Any] = {"note": "n"}
        kit = await pets.create(Pet(id="kit", tags=["a"], **note))
        assert kit.age is None and await pets.read("kit") == kit
        age: dict[str, Any] = {"age": 0}
        assert (await pets.create(Pet(id="old", **age))).age == 0
        with pytest.raises(ValidationError) as e:
            await pets.create(Pet(id="neg", **{**age, "age": -1}))
        assert e.value.field == "age"
        assert await pets.count(F.age == None) == 1  # noqa: E711
        assert await pets.count(F.tags.contains("a")) == 1


__all__ = ["AsyncRobustnessConformance"]


async def _all(store: AsyncStore[Any]) -> list[Any]:
    return [item async for item in store.search_all()]
