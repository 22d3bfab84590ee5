"""Path access as tests: ``read_path``, ``write_path`` and ``patch`` naming paths.

Mix it into a conformance class beside :class:`AsyncStoreConformance` (it uses the same
``open_database``, ``wrap`` and ``drop`` hooks)::

    class TestMine(AsyncStoreConformance, AsyncPathConformance):
        async def open_database(self, namespace):
            return persisty.aio.connect("mine://…", namespace=namespace)

Paths are ``a.b``, ``items[3].x`` or JSON Pointers (``/extra/a.b``); values are coerced to
the declared type, and every write is one conditional write tried again on a concurrent
change, so writers of different paths of one item never lose each other's change.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from persisty.errors import NotFound, PreconditionFailed, ValidationError
from persisty.model import etag
from persisty.query import F
from persisty.store import AsyncStore, Edit, Increment
from persisty.testing._concurrency import run_concurrently_async
from persisty.testing._hooks_async import AsyncEngineHooks
from persisty.testing.models import Address, Profile


def _profile(key: str) -> Profile:
    return Profile(
        id=key,
        address=Address("Main St 1", "Osaka", None),
        history=[Address("Old St 2", "Kobe", "650"), Address("Elm 3", "Nara")],
        extra={"a.b": 1, "x": 2},
    )


class AsyncPathConformance(AsyncEngineHooks):
    """``read_path``/``write_path`` and paths in ``patch`` and batches on one engine."""

    path_workers = 8
    path_rounds = 25

    @pytest.fixture
    async def profiles(self) -> AsyncIterator[AsyncStore[Profile]]:
        async with self.opened() as db:
            yield await self.wrap(db.store(Profile))

    async def test_read_path(self, profiles: AsyncStore[Profile]) -> None:
        await profiles.create(_profile("p1"))
        assert await profiles.read_path("p1", "address.city") == "Osaka"
        assert await profiles.read_path("p1", "address") == Address("Main St 1", "Osaka", None)
        assert await profiles.read_path("p1", "history[1].city") == "Nara"
        assert await profiles.read_path("p1", "history[1].zip") is None
        assert await profiles.read_path("p1", "history[7].city") is None
        assert await profiles.read_path("p1", "/extra/a.b") == 1
        assert await profiles.read_path("p1", "extra.x") == 2
        assert await profiles.read_path("p1", "/history/0/zip") == "650"
        assert await profiles.read_path("p1", "extra.nothing") is None
        await profiles.create(Profile(id="p2"))
        assert await profiles.read_path("p2", "address.city") is None  # through a None
        with pytest.raises(NotFound):
            await profiles.read_path("nobody", "address.city")
        for bad in (
            "address.nope",
            "nope",
            "history.city",
            "address.city.x",
            "a..b",
            "history[x]",
            "",
        ):
            with pytest.raises(ValidationError) as e:
                await profiles.read_path("p1", bad)
            assert e.value.field is not None

    async def test_write_path(self, profiles: AsyncStore[Profile]) -> None:
        first = await profiles.create(_profile("p1"))
        new = await profiles.write_path("p1", "address.city", "Tokyo")
        assert new.address == Address("Main St 1", "Tokyo", None)
        assert new.history == first.history and new.extra == first.extra
        assert await profiles.read("p1") == new
        assert etag(new) != etag(first)
        new = await profiles.write_path("p1", "/extra/a.b", "5")  # coerced to the int declared
        assert new.extra == {"a.b": 5, "x": 2}
        new = await profiles.write_path("p1", "extra.y", 7)  # a new dict key
        assert new.extra == {"a.b": 5, "x": 2, "y": 7}
        new = await profiles.write_path("p1", "history[0].street", "New St 9")
        assert [a.street for a in new.history] == ["New St 9", "Elm 3"]
        assert new.history[0].city == "Kobe"
        new = await profiles.write_path("p1", "history[1]", {"street": "S", "city": "C"})
        assert new.history[1] == Address("S", "C", None)
        assert await profiles.read("p1") == new
        await profiles.create(Profile(id="p2"))
        bad: list[tuple[str, str, Any]] = [
            ("p1", "extra.x", "not a number"),
            ("p1", "address.city", 12),
            ("p1", "history[5].city", "far"),
            ("p1", "address.nope", "x"),
            ("p1", "id.x", "k"),
            ("p2", "address.city", "nowhere"),
        ]
        for key, path, value in bad:
            before = await profiles.read(key)
            with pytest.raises(ValidationError) as e:
                await profiles.write_path(key, path, value)
            assert e.value.field is not None, (path, e.value)
            assert await profiles.read(key) == before  # nothing written
        with pytest.raises(NotFound):
            await profiles.write_path("nobody", "address.city", "x")

    async def test_write_path_conditions(self, profiles: AsyncStore[Profile]) -> None:
        first = await profiles.create(_profile("p1"))
        with pytest.raises(PreconditionFailed):
            await profiles.write_path("p1", "address.city", "Stale", if_match="nope")
        new = await profiles.write_path("p1", "address.city", "Kyoto", if_match=etag(first))
        with pytest.raises(PreconditionFailed):
            await profiles.write_path("p1", "address.city", "Old", if_match=etag(first))
        with pytest.raises(PreconditionFailed):
            await profiles.write_path("p1", "extra.x", 9, precondition=F.id == "other")
        assert await profiles.read("p1") == new
        done = await profiles.write_path("p1", "extra.x", 9, precondition=F.id == "p1")
        assert done.extra["x"] == 9 and done.address is not None
        assert done.address.city == "Kyoto"

    async def test_patch_with_paths(self, profiles: AsyncStore[Profile]) -> None:
        await profiles.create(_profile("p1"))
        new = await profiles.patch(
            "p1",
            {
                "address.city": "Sapporo",
                "extra.x": Increment(3),
                "/extra/a.b": 10,
                "avatar": b"\x00\x01",
            },
        )
        assert new.address is not None and new.address.city == "Sapporo"
        assert new.extra == {"a.b": 10, "x": 5} and new.avatar == b"\x00\x01"
        assert await profiles.read("p1") == new
        for overlapping in (
            {"address": None, "address.city": "x"},
            {"history[0]": {"street": "a", "city": "b"}, "history[0].city": "c"},
        ):
            with pytest.raises(ValidationError):
                await profiles.patch("p1", overlapping)
        with pytest.raises(ValidationError):
            await profiles.patch("p1", {"address.city": Increment(1)})
        assert await profiles.read("p1") == new
        results = await profiles.edit_batch(
            [Edit.patch("p1", {"extra.z": 1}), Edit.patch("p1", {"extra.x": Increment(1)})],
            atomic=True,
        )
        assert all(r.ok for r in results), results
        got = await profiles.read("p1")
        assert got is not None and got.extra == {"a.b": 10, "x": 6, "z": 1}
        results = await profiles.edit_batch(
            [Edit.patch("p1", {"extra.q": 1}), Edit.patch("p1", {"extra.x": "NaN?"})], atomic=True
        )
        assert not results[0].ok and results[1].code == "validation_error"
        assert await profiles.read("p1") == got
        assert await profiles.update_all(F.id == "p1", {"extra.w": 4}) == 1
        got = await profiles.read("p1")
        assert got is not None and got.extra["w"] == 4

    async def test_concurrent_write_paths(self, profiles: AsyncStore[Profile]) -> None:
        """Writers of separate paths of one item each end where they stopped: none loses
        another's change."""
        await profiles.create(Profile(id="shared"))
        rounds = self.path_rounds

        async def worker(n: int) -> None:
            for i in range(1, rounds + 1):
                await profiles.write_path("shared", f"extra.c{n}", i)

        await run_concurrently_async(
            [
                lambda n=n: worker(n)  # type: ignore[misc]
                for n in range(self.path_workers)
            ]
        )
        final = await profiles.read("shared")
        assert final is not None
        assert final.extra == {f"c{n}": rounds for n in range(self.path_workers)}
