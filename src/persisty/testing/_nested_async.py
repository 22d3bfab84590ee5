"""Filters on nested paths as tests: ``F["spot.city"] == "Osaka"`` or ``F.spot.city``.

Mix it into a conformance class beside :class:`AsyncStoreConformance` (it uses the same
``open_database``, ``wrap`` and ``drop`` hooks)::

    class TestMine(AsyncStoreConformance, AsyncNestedFilterConformance):
        async def open_database(self, namespace):
            return persisty.aio.connect("mine://…", namespace=namespace)

A path is checked against the model (``ValidationError`` naming an unknown one), its value
coerced to the declared type, and a ``None`` parent, a missing dict key or an index past the
end read as ``None``. Each engine runs what it can natively (``explain()`` says which part)
and the rest in Python; the results equal the Python evaluator's on random filters.
Set ``nested_native`` on a class whose engine pushes scalar nested comparisons down.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from persisty.errors import ValidationError
from persisty.model import meta_of
from persisty.query import F, Filter, compile_filter, paths_of, validate_filter
from persisty.store import AsyncStore, Edit
from persisty.testing._hooks_async import AsyncEngineHooks
from persisty.testing._nested import nested_filters, sample_venues
from persisty.testing.models import Color, Geo, Spot, Venue

VENUE = meta_of(Venue)


def _want(venues: list[Venue], f: Filter) -> list[str]:
    keep = compile_filter(validate_filter(f, VENUE), VENUE)
    return sorted(v.id for v in venues if keep(v))


class AsyncNestedFilterConformance(AsyncEngineHooks):
    """Filters on nested paths on one engine, checked against the Python evaluator."""

    nested_native = False
    """Whether the engine runs comparisons on nested strings and numbers natively."""

    @pytest.fixture
    async def venues(self) -> AsyncIterator[tuple[AsyncStore[Venue], list[Venue]]]:
        async with self.opened() as db:
            store = await self.wrap(db.store(Venue))
            results = await store.edit_batch([Edit.create(v) for v in sample_venues()])
            assert all(r.ok for r in results), [r for r in results if not r.ok][:1]
            yield store, [r.item for r in results if r.item is not None]

    async def _ids(self, store: AsyncStore[Venue], f: Filter) -> list[str]:
        return sorted(v.id for v in (await store.search(f, limit=1000)).items)

    async def test_nested_equality(self, venues: tuple[AsyncStore[Venue], list[Venue]]) -> None:
        store, stored = venues
        want = _want(stored, F["spot.city"] == "Osaka")
        assert want and want == [v.id for v in stored if v.spot and v.spot.city == "Osaka"]
        assert await self._ids(store, F["spot.city"] == "Osaka") == want
        assert await self._ids(store, F.spot.city == "Osaka") == want
        assert await self._ids(store, F["/spot/city"] == "Osaka") == want
        assert await store.count(F.spot.city == "Osaka") == len(want)
        two = F.spot.geo.latitude >= 34.7
        assert await self._ids(store, two) == _want(stored, two)

    async def test_nested_through_none_and_missing(
        self, venues: tuple[AsyncStore[Venue], list[Venue]]
    ) -> None:
        store, stored = venues
        for f in (
            F.spot.city == None,  # noqa: E711
            F.spot.city != "Osaka",
            F.spot.rank.exists(False),
            F.spot.geo.exists(),
            F.visits[1].city.exists(),
            F.visits[1].rank >= 1,
            F.extra.a == 3,
            F.extra["a.b"] != 3,
            F.labels["/"] == "3",
            ~(F.spot.open == True),  # noqa: E712
        ):
            assert await self._ids(store, f) == _want(stored, f), f

    async def test_nested_types(self, venues: tuple[AsyncStore[Venue], list[Venue]]) -> None:
        store, stored = venues
        # numbers and strings that look alike never match each other
        assert await self._ids(store, F.labels.k == "3") == _want(stored, F.labels.k == "3")
        assert await self._ids(store, F.extra.a == "3") == _want(stored, F.extra.a == 3)
        big = F.spot.rank > 2**39
        assert await self._ids(store, big) == _want(stored, big)
        for f in (
            F.spot.open == False,  # noqa: E712
            F.spot.open < True,
            F.spot.kind == Color.RED,
            F.spot.kind.in_(["green", None]),
            F.spot.city.in_(["Osaka", "3"]),
            F.spot.city.istartswith("ö"),
            F.spot.city.contains("%_"),
            F.spot.country.endswith("P"),
        ):
            assert await self._ids(store, f) == _want(stored, f), f

    async def test_nested_paths_are_validated(self, venues: tuple[AsyncStore[Venue], Any]) -> None:
        store, _ = venues
        with pytest.raises(ValidationError) as e:
            await store.search(F.spot.town == "x")
        assert e.value.field == "spot.town"
        with pytest.raises(ValidationError) as e:
            await store.search(F.spot.rank.startswith("1"))
        assert e.value.field == "spot.rank"
        with pytest.raises(ValidationError) as e:
            await store.search(F.spot.rank == "many")
        assert e.value.field == "spot.rank"
        with pytest.raises(ValidationError) as e:
            await store.search(F.visits.city == "x")  # a list: name an element
        assert e.value.field == "visits.city"
        with pytest.raises(ValidationError) as e:
            await store.search(order="spot.city")
        assert e.value.field == "spot.city"
        with pytest.raises(ValidationError) as e:
            await store.search(F.spot.geo == None)  # noqa: E711  (a struct: use exists)
        assert e.value.field == "spot.geo"

    async def test_nested_explain(self, venues: tuple[AsyncStore[Venue], list[Venue]]) -> None:
        store, stored = venues
        f = (F.spot.city == "Osaka") & (F.name == "Hall")
        plan = await store.explain(f)
        assert "spot.city" in paths_of(plan.native) | paths_of(plan.residual)
        if self.nested_native:
            assert "spot.city" in paths_of(plan.native)
            assert plan.residual is not None and "spot.city" not in paths_of(plan.residual)
        keep = compile_filter(validate_filter(plan.native & plan.residual, VENUE), VENUE)
        want = compile_filter(validate_filter(f, VENUE), VENUE)
        assert [keep(v) for v in stored] == [want(v) for v in stored]

    async def test_nested_filters_in_writes(
        self, venues: tuple[AsyncStore[Venue], list[Venue]]
    ) -> None:
        store, stored = venues
        f = F.spot.country == "JP"
        want = _want(stored, f)
        assert await store.update_all(f, {"name": "jp"}) == len(want)
        assert await self._ids(store, F.name == "jp") == want
        assert await store.delete_all(f) == len(want)
        assert await store.count(f) == 0
        one = next(v for v in stored if v.spot is not None and v.id not in want)
        assert one.spot is not None
        changed = await store.patch(
            one.id, {"name": "p"}, precondition=F.spot.city == one.spot.city
        )
        assert changed.name == "p"
        new = Venue(id="new", spot=Spot("Kobe", rank=1, geo=Geo(1.0, 2.0)))
        await store.create(new)
        assert await self._ids(store, F.spot.city == "Kobe") == ["new"]

    # one method inherited by every backend's class: each is its own executor
    @settings(max_examples=50, deadline=None, suppress_health_check=list(HealthCheck))
    @given(data=st.data())
    async def test_random_nested_filters_match_evaluator(
        self, venues: tuple[AsyncStore[Venue], list[Venue]], data: st.DataObject
    ) -> None:
        store, stored = venues
        f = data.draw(nested_filters, label="filter")
        want = _want(stored, f)
        assert await self._ids(store, f) == want
        assert await store.count(f) == len(want)
