"""Conformance: search, count, ordering, paging, page keys and explain."""

from __future__ import annotations

import uuid
from datetime import date

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from persisty.errors import ValidationError
from persisty.query import (
    ALL,
    F,
    Filter,
    compile_filter,
    validate_filter,
)
from persisty.store import AsyncDatabase, AsyncStore, Edit
from persisty.testing._data import every_op_filters, filters, sample_items
from persisty.testing._store._async.base import ITEM, AsyncStoreSuiteBase, _expected, _keys
from persisty.testing.models import Doc, Item

_INHERITED = [
    HealthCheck.function_scoped_fixture,
    HealthCheck.too_slow,
    HealthCheck.differing_executors,
]
"""The health checks a property test of the suite passes by design: one method, inherited by
every backend's subclass (each its own executor), over a loaded fixture."""


class AsyncSearchConformance(AsyncStoreSuiteBase):
    """Searching of the Store contract."""

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

    @settings(max_examples=60, deadline=None, suppress_health_check=_INHERITED)
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

    @settings(max_examples=30, deadline=None, suppress_health_check=_INHERITED)
    @given(data=st.data())
    async def test_repeated_equality_counts_match_evaluator(
        self, loaded: tuple[AsyncStore[Item], list[Item]], data: st.DataObject
    ) -> None:
        """``count(F.attr == value)`` asked again and again with other values (a backend
        may keep the statement of the shape) gives what the evaluator gives, for any value;
        one the validator refuses is refused every time."""
        items, stored = loaded
        attr = data.draw(st.sampled_from(["owner", "title", "code", "priority"]), label="attr")
        # (values within 64 bits: what every engine stores)
        known = [getattr(i, attr) for i in stored if getattr(i, attr) is not None]
        if attr == "priority":
            values = st.one_of(st.sampled_from(known), st.integers(-(2**63), 2**63 - 1))
        else:
            # (no NUL and no lone surrogate: engines refuse them in any text, a filter's
            # included, with a ValidationError of their own)
            chars = st.characters(exclude_categories=["Cs"], exclude_characters="\x00")
            text = st.text(chars, max_size=150)
            values = st.one_of(st.sampled_from(known), text)
        for value in data.draw(st.lists(values, min_size=3, max_size=6), label="values"):
            f = F[attr] == value
            try:
                want = len(_expected(stored, validate_filter(f, items.meta)))
            except ValidationError:
                for _ in range(2):
                    with pytest.raises(ValidationError):
                        await items.count(f)
                continue
            assert await items.count(f) == want, f
            assert await items.count(f) == want, f

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
