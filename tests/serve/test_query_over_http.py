"""Property test: any filter and order, sent over HTTP in the query-string form (REST) or
as a JSON filter, returns exactly what the reference evaluator says, page after page."""

from __future__ import annotations

import tempfile
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

import persisty.aio
from persisty.model import meta_of
from persisty.query import (
    Filter,
    compile_filter,
    filter_to_json,
    filter_to_query,
    sort_key,
    sort_spec,
    validate_filter,
)
from persisty.serve import app
from persisty.store import Edit
from persisty.testing._data import filters, sample_items
from persisty.testing.models import Item

ITEM = meta_of(Item)
ITEMS = sample_items(40)
DB = persisty.aio.connect(f"sqlite:///{tempfile.mkdtemp(prefix='persisty-q-')}/q.db")
CLIENT = TestClient(app(DB, [Item], close_database=False))
ORDERS = st.sampled_from([None, "-priority", "title", "-score,owner", "due,-title", "color"])


def _setup() -> None:
    if CLIENT.get("/api/item/_count").json()["count"] == 0:
        import asyncio

        asyncio.run(DB.store(Item).edit_batch([Edit.create(i) for i in ITEMS]))


def expected(f: Filter, order: str | None) -> list[str]:
    keep = compile_filter(validate_filter(f, ITEM), ITEM)
    items = sorted((i for i in ITEMS if keep(i)), key=sort_key(sort_spec(ITEM, order)))
    return [ITEM.key_of(i) for i in items]


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(f=filters, order=ORDERS, limit=st.integers(1, 15), as_json=st.booleans())
def test_search_over_http_matches_the_evaluator(
    f: Filter, order: str | None, limit: int, as_json: bool
) -> None:
    _setup()
    if as_json:
        import json

        params: list[tuple[str, Any]] = [("filter", json.dumps(filter_to_json(f)))]
    else:
        params = list(filter_to_query(f))
    params += [("limit", str(limit))] + ([("order", order)] if order else [])
    got: list[str] = []
    page_key = None
    for _ in range(100):
        r = CLIENT.get("/api/item", params=params + ([("page_key", page_key)] if page_key else []))
        assert r.status_code == 200, r.text
        body = r.json()
        assert len(body["items"]) <= limit
        got += [ITEM.key_of(ITEM.from_builtins(i)) for i in body["items"]]
        page_key = body["next_page_key"]
        if page_key is None:
            break
    assert got == expected(f, order)
    r = CLIENT.get("/api/item/_count", params=params[:-1] if not order else params[:-2])
    assert r.json()["count"] == len(got)
