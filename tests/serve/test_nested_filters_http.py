"""Nested paths over HTTP: ``?spot.city=Osaka`` and ``?spot.rank__gte=1`` in the REST query
string (the ``attr__op=value`` form takes a path where it takes an attribute), paths in a JSON
``filter=``, GraphQL's ``filter: {paths: [{path: "spot.city", value: "Osaka"}]}``, a 422 (an
error naming the field in GraphQL) for an unknown path, and property tests against the
evaluator."""

from __future__ import annotations

import asyncio
import json
import tempfile
from typing import Any

import msgspec
from hypothesis import HealthCheck, given, settings
from starlette.testclient import TestClient

import persisty.aio
from persisty.model import meta_of
from persisty.query import (
    ALL,
    NONE,
    And,
    Compare,
    F,
    Filter,
    Not,
    Or,
    compile_filter,
    filter_to_json,
    filter_to_query,
    validate_filter,
)
from persisty.serve import app
from persisty.store import Edit
from persisty.testing._nested import nested_filters, sample_venues
from persisty.testing.models import Venue

VENUE = meta_of(Venue)
VENUES = sample_venues()
DB = persisty.aio.connect(f"sqlite:///{tempfile.mkdtemp(prefix='persisty-n-')}/n.db")
CLIENT = TestClient(app(DB, [Venue], close_database=False))


def _setup() -> None:
    if CLIENT.get("/api/venue/_count").json()["count"] == 0:
        asyncio.run(DB.store(Venue).edit_batch([Edit.create(v) for v in VENUES]))


def _want(f: Filter) -> list[str]:
    keep = compile_filter(validate_filter(f, VENUE), VENUE)
    return sorted(v.id for v in VENUES if keep(v))


def _got(params: list[tuple[str, str]]) -> list[str]:
    r = CLIENT.get("/api/venue", params=[*params, ("limit", "1000")])
    assert r.status_code == 200, r.text
    return sorted(i["id"] for i in r.json()["items"])


def test_path_pairs_in_the_query_string() -> None:
    _setup()
    osaka = [v.id for v in VENUES if v.spot is not None and v.spot.city == "Osaka"]
    assert osaka and _got([("spot.city", "Osaka")]) == sorted(osaka)
    ranked = [v.id for v in VENUES if v.spot and v.spot.rank is not None and v.spot.rank >= 1]
    assert _got([("spot.rank__gte", "1")]) == sorted(ranked)
    assert _got([("/extra/a.b", "3")]) == _want(F["/extra/a.b"] == 3)


def test_unknown_path_is_422_naming_it() -> None:
    _setup()
    r = CLIENT.get("/api/venue", params={"spot.town": "x"})
    assert r.status_code == 422 and r.json()["field"] == "spot.town"
    r = CLIENT.get("/api/venue", params={"spot.rank__startswith": "1"})
    assert r.status_code == 422 and r.json()["field"] == "spot.rank"


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(f=nested_filters)
def test_nested_filters_over_http_match_the_evaluator(f: Filter) -> None:
    _setup()
    assert _got(filter_to_query(f)) == _want(f)
    assert _got([("filter", json.dumps(filter_to_json(f)))]) == _want(f)


# ---- GraphQL ------------------------------------------------------------------------------

SEARCH = """query($f: VenueFilter) { venueSearch(filter: $f, limit: 1000) { items { id } } }"""


def _gql(variables: dict[str, Any], query: str = SEARCH) -> dict[str, Any]:
    r = CLIENT.post("/graphql", json={"query": query, "variables": variables})
    # errors are in the body (400 when no data came back), never a 5xx
    assert r.status_code in (200, 400), r.text
    body: dict[str, Any] = r.json()
    return body


def _gql_ids(f: dict[str, Any]) -> list[str]:
    body = _gql({"f": f})
    assert "errors" not in body, body
    return sorted(i["id"] for i in body["data"]["venueSearch"]["items"])


def _as_input(f: Filter) -> dict[str, Any]:
    """``f`` as a GraphQL ``VenueFilter`` input: comparisons as ``paths`` entries."""
    if isinstance(f, And):
        return {"and": [_as_input(x) for x in f.filters]}
    if isinstance(f, Or):
        return {"or": [_as_input(x) for x in f.filters]}
    if isinstance(f, Not):
        return {"not": _as_input(f.filter)}
    if f is ALL:
        return {}
    if f is NONE:
        return {"or": []}
    assert isinstance(f, Compare), f
    value = list(f.value) if isinstance(f.value, tuple) else f.value
    return {"paths": [{"path": f.attr, "op": f.op.value, "value": msgspec.to_builtins(value)}]}


def test_graphql_filters_on_nested_paths() -> None:
    _setup()
    osaka = [v.id for v in VENUES if v.spot is not None and v.spot.city == "Osaka"]
    assert osaka and _gql_ids({"paths": [{"path": "spot.city", "value": "Osaka"}]}) == sorted(osaka)
    ranked = _gql_ids({"paths": [{"path": "spot.rank", "op": "gte", "value": 1}]})
    assert ranked == _want(F["spot.rank"] >= 1)
    assert _gql_ids({"paths": [{"path": "/extra/a.b", "value": 3}]}) == _want(F["/extra/a.b"] == 3)
    both = {"paths": [{"path": "spot.city", "value": "Osaka"}], "name": "Hall"}
    assert _gql_ids(both) == _want((F["spot.city"] == "Osaka") & (F.name == "Hall"))
    inside = {"not": {"paths": [{"path": "visits[0].city", "op": "in", "value": ["Osaka"]}]}}
    assert _gql_ids(inside) == _want(~F["visits[0].city"].in_(["Osaka"]))
    counted = _gql(
        {"f": {"paths": [{"path": "spot.city", "value": "Osaka"}]}},
        "query($f: VenueFilter) { venueCount(filter: $f) }",
    )
    assert counted["data"]["venueCount"] == len(osaka)


def test_graphql_unknown_path_is_an_error_naming_it() -> None:
    _setup()
    for entry, field in (
        ({"path": "spot.town", "value": "x"}, "spot.town"),
        ({"path": "nowhere.city", "value": "x"}, "nowhere.city"),
        ({"path": "spot.rank", "op": "startswith", "value": "1"}, "spot.rank"),
        ({"path": "spot.rank", "value": "not a number"}, "spot.rank"),
        ({"path": "spot.city", "op": "in", "value": "Osaka"}, "spot.city"),
        ({"path": "spot..city", "value": "x"}, "spot..city"),
    ):
        body = _gql({"f": {"paths": [entry]}})
        assert body["data"] is None, (entry, body)
        assert body["errors"][0]["extensions"] == {"code": "validation_error", "field": field}
    body = _gql({"f": {"paths": [{"path": "spot.city", "op": "near", "value": "x"}]}})
    assert body["errors"] and "near" in body["errors"][0]["message"]  # not an op: refused


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(f=nested_filters)
def test_graphql_nested_filters_match_the_evaluator(f: Filter) -> None:
    _setup()
    assert _gql_ids(_as_input(f)) == _want(f)
