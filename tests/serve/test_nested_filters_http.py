"""Nested paths over HTTP: ``?spot.city=Osaka`` and ``?spot.rank__gte=1`` in the REST query
string (the ``attr__op=value`` form takes a path where it takes an attribute), paths in a JSON
``filter=``, a 422 naming an unknown path, and a property test against the evaluator."""

from __future__ import annotations

import asyncio
import json
import tempfile

from hypothesis import HealthCheck, given, settings
from starlette.testclient import TestClient

import persisty.aio
from persisty.model import meta_of
from persisty.query import (
    F,
    Filter,
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
