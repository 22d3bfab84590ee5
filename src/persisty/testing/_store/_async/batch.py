"""Conformance: batches, bulk updates and deletes."""

from __future__ import annotations

import dataclasses
import uuid

import pytest

from persisty.errors import ValidationError
from persisty.model import etag
from persisty.query import (
    F,
)
from persisty.store import AsyncStore, Edit
from persisty.testing._store._async.base import AsyncStoreSuiteBase, _expected
from persisty.testing.models import Item


class AsyncBatchConformance(AsyncStoreSuiteBase):
    """Batches and bulk edits of the Store contract."""

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
