"""Writes to several stores of one database in one commit (``db.commit``) as tests.

Mix it into a backend's conformance class (it uses the same ``open_database`` and ``drop``
hooks); it runs on the database's own stores, since an atomic commit takes no layer::

    class TestMine(AsyncStoreConformance, AsyncCommitConformance):
        async def open_database(self, namespace):
            return persisty.aio.connect("mine://…", namespace=namespace)
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from persisty.errors import ValidationError
from persisty.layers import Policy, Principal, secured
from persisty.model import etag
from persisty.store import AsyncDatabase, Edit, Increment
from persisty.testing._concurrency import run_concurrently_async
from persisty.testing._hooks_async import AsyncEngineHooks
from persisty.testing.models import Counter, Doc, Tally


class AsyncCommitConformance(AsyncEngineHooks):
    """``db.commit([(store, edit), …], atomic=…)`` over several stores of one engine."""

    commit_workers = 4
    commit_rounds = 10

    @pytest.fixture
    async def committing(self) -> AsyncIterator[AsyncDatabase]:
        async with self.opened() as db:
            yield db

    async def test_commit_is_all_or_nothing(self, committing: AsyncDatabase) -> None:
        db = committing
        tallies, counters, docs = db.store(Tally), db.store(Counter), db.store(Doc)
        results = await db.commit(
            [
                (tallies, Edit.create(Tally(id="t", hits=1))),
                (counters, Edit.create(Counter(id="c", value=1))),
                (docs, Edit.create(Doc(owner="ann", slug="d"))),
            ]
        )
        assert [r.ok for r in results] == [True, True, True]
        assert results[1].item == Counter(id="c", value=1)
        t = await tallies.read("t")
        assert t is not None
        # one write fails: nothing of the commit is applied, in any store
        for failing in (
            Edit.create(Counter(id="c")),  # taken
            Edit.patch("nobody", {"value": 1}),  # missing
            Edit.update(Counter(id="c", value=5), if_match="stale"),
            Edit.patch("c", {"value": "not a number"}),
        ):
            results = await db.commit(
                [
                    (tallies, Edit.patch("t", {"hits": 99})),
                    (docs, Edit.delete("ann:d")),
                    (counters, failing),
                ]
            )
            assert [r.code for r in results[:2]] == ["aborted", "aborted"], results
            assert not results[2].ok and results[2].code != "aborted"
            assert await tallies.read("t") == t
            assert await docs.read("ann:d") is not None
            assert await counters.read("c") == Counter(id="c", value=1)
        results = await db.commit(
            [
                (tallies, Edit.patch("t", {"hits": Increment(2)})),
                (
                    counters,
                    Edit.update(Counter(id="c", value=7), if_match=etag(Counter(id="c", value=1))),
                ),
                (docs, Edit.delete("ann:d")),
                (tallies, Edit.create(Tally(id="u"))),
            ]
        )
        assert all(r.ok for r in results), results
        got = await tallies.read("t")
        assert got is not None and got.hits == 3
        assert await counters.read("c") == Counter(id="c", value=7)
        assert await docs.read("ann:d") is None and await tallies.count() == 2

    async def test_commit_not_atomic(self, committing: AsyncDatabase) -> None:
        db = committing
        tallies, counters = db.store(Tally), db.store(Counter)
        await counters.create(Counter(id="c"))
        results = await db.commit(
            [(tallies, Edit.create(Tally(id="t"))), (counters, Edit.create(Counter(id="c")))],
            atomic=False,
        )
        assert results[0].ok and results[1].code == "conflict"
        assert await tallies.read("t") is not None

    async def test_commit_takes_one_database(self, committing: AsyncDatabase) -> None:
        db = committing
        other = await self.open_database("t" + uuid.uuid4().hex[:12])
        try:
            theirs = other.store(Counter)
            with pytest.raises(ValidationError):
                await db.commit(
                    [
                        (db.store(Tally), Edit.create(Tally(id="t"))),
                        (theirs, Edit.create(Counter(id="c"))),
                    ]
                )
            assert await db.store(Tally).read("t") is None
            assert await theirs.read("c") is None
            with pytest.raises(ValidationError):
                await db.commit([(db.store(Tally), "not an edit")])  # type: ignore[list-item]
            results = await db.commit(
                [
                    (db.store(Tally), Edit.create(Tally(id="t"))),
                    (theirs, Edit.create(Counter(id="c"))),
                ],
                atomic=False,
            )
            assert all(r.ok for r in results)
            assert await theirs.read("c") is not None
        finally:
            try:
                await self.drop(other)
            finally:
                await other.close()
        assert await db.commit([]) == []

    async def test_concurrent_commits(self, committing: AsyncDatabase) -> None:
        """Concurrent commits that change the same items in two stores lose nothing."""
        db = committing
        tallies, counters = db.store(Tally), db.store(Counter)
        await tallies.create(Tally(id="t"))
        await counters.create(Counter(id="c"))

        async def worker() -> None:
            for _ in range(self.commit_rounds):
                results = await db.commit(
                    [
                        (tallies, Edit.patch("t", {"hits": Increment(1)})),
                        (counters, Edit.patch("c", {"value": Increment(1)})),
                    ]
                )
                assert all(r.ok for r in results), results

        await run_concurrently_async([worker] * self.commit_workers)
        t, c = await tallies.read("t"), await counters.read("c")
        total = self.commit_workers * self.commit_rounds
        assert t is not None and c is not None and (t.hits, c.value) == (total, total)

    async def test_commit_with_stores_of_layers(self, committing: AsyncDatabase) -> None:
        """A layer's store takes part in non-atomic commits only (its own rules run)."""
        db = committing
        guarded: Any = secured(db.store(Counter), Policy.allow_all(), Principal("svc"))
        with pytest.raises(ValidationError) as e:
            await db.commit([(guarded, Edit.create(Counter(id="c")))])
        assert "layer" in str(e.value)
        results = await db.commit([(guarded, Edit.create(Counter(id="c")))], atomic=False)
        assert results[0].ok

    async def test_read_batch_across_stores(self, committing: AsyncDatabase) -> None:
        """``db.read_batch([(store, key), …])``: one item or ``None`` per pair, in order, over
        the database's own stores (a composite key, a repeat, a missing key) and a layer."""
        db = committing
        tallies, counters, docs = db.store(Tally), db.store(Counter), db.store(Doc)
        t = await tallies.create(Tally(id="t", hits=2))
        c = await counters.create(Counter(id="c", value=3))
        d = await docs.create(Doc(owner="ann", slug="d"))
        guarded: Any = secured(counters, Policy.allow_all(), Principal("svc"))
        got = await db.read_batch(
            [
                (counters, "c"),
                (tallies, "t"),
                (docs, "ann:d"),
                (counters, "nobody"),
                (tallies, "t"),
                (guarded, "c"),
                (docs, "bo:d"),
            ]
        )
        assert got == [c, t, d, None, t, c, None]
        many = [f"n{i}" for i in range(130)]  # more than one DynamoDB request holds
        for k in many[::3]:
            await counters.create(Counter(id=k, value=1))
        got = await db.read_batch([(counters, k) for k in many] + [(tallies, "t")])
        assert [g is not None for g in got[:-1]] == [i % 3 == 0 for i in range(130)]
        assert got[-1] == t
        assert await db.read_batch([]) == []
        for bad in ("c", [(counters, 5)], [counters]):
            with pytest.raises(ValidationError):
                await db.read_batch(bad)  # type: ignore[arg-type]
