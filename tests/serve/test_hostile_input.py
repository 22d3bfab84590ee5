"""A client's value never breaks the server (issue 11, item 2): NaN, infinities and
signalling NaNs, range filters with null or NaN, datetimes at the ends of the range,
1,000-deep JSON (filters, bodies, preconditions) and a 2 MB key answer 422 naming the field
or are stored exactly, on every engine, and the database keeps working afterwards (an
in-memory SQLite database lives in its one connection: it must never be thrown away)."""

from __future__ import annotations

import json
import os
import tempfile
import uuid
from typing import Any

import pytest
from starlette.testclient import TestClient
from tests.conftest import MYSQL_URL, POSTGRES_URL, REDIS_URL

import persisty.aio
from persisty.serve import Limits, app
from persisty.testing.models import Measure

URLS = [
    "memory://",
    "sqlite://",
    "file",
    "sqlite-file",
    POSTGRES_URL,
    MYSQL_URL,
    REDIS_URL,
    "dynamodb",
]


def _url(name: str) -> str:
    if name == "file":
        return f"file://{tempfile.mkdtemp(prefix='persisty-hostile-')}"
    if name == "sqlite-file":
        return f"sqlite:///{tempfile.mkdtemp(prefix='persisty-hostile-')}/h.db"
    if name == "dynamodb":
        endpoint = os.environ.get("AWS_ENDPOINT_URL", "")
        if not endpoint:
            pytest.fail("AWS_ENDPOINT_URL is not set: run the tests with scripts/test")
        return f"dynamodb://?region=us-east-1&endpoint_url={endpoint}"
    return name


@pytest.fixture(params=URLS, scope="module")
def client(request: Any) -> Any:
    db = persisty.aio.connect(_url(request.param), namespace="h" + uuid.uuid4().hex[:10])
    # bodies up to 4 MB: the 2 MB key must reach the engine
    asgi = app(db, [Measure], close_database=False, limits=Limits(max_body=4 << 20))
    with TestClient(asgi) as c:
        yield c
        c.portal.call(db.drop)  # type: ignore[union-attr]
        c.portal.call(db.close)  # type: ignore[union-attr]


def _deep_json(depth: int, leaf: str) -> str:
    return '{"not":' * depth + leaf + "}" * depth


def _deep_doc(depth: int) -> str:
    return '{"a":' * depth + "{}" + "}" * depth


def _still_works(client: Any) -> None:
    key = "ok-" + uuid.uuid4().hex[:8]
    r = client.post("/api/measure", json={"id": key, "value": 1.5, "amount": "2.5"})
    assert r.status_code == 201, r.text
    assert client.get(f"/api/measure/{key}").json()["value"] == 1.5
    assert client.get("/api/measure/_count", params={"id": key}).json()["count"] == 1


@pytest.mark.parametrize(
    "name,value",
    [
        ("amount", "sNaN"),
        ("amount", "NaN"),
        ("amount", "Infinity"),
        ("amount", "-Infinity"),
        ("value", "NaN"),
        ("value", "nan"),
        ("value", "Infinity"),
        ("value", "-inf"),
        ("value", "1e400"),
    ],
)
def test_non_finite_numbers_are_422(client: Any, name: str, value: str) -> None:
    r = client.post("/api/measure", json={"id": "n-" + uuid.uuid4().hex[:6], name: value})
    assert r.status_code == 422, r.text
    assert r.json()["field"] == name
    key = "p-" + uuid.uuid4().hex[:6]
    assert client.post("/api/measure", json={"id": key}).status_code == 201
    r = client.patch(f"/api/measure/{key}", json={name: value})
    assert r.status_code == 422 and r.json()["field"] == name, r.text
    for op in ("", "__gte", "__lt"):
        r = client.get("/api/measure", params={name + op: value})
        assert r.status_code == 422 and r.json()["field"] == name, r.text
    _still_works(client)


@pytest.mark.parametrize(
    "query",
    [
        {"value__gte": "null"},
        {"amount__lt": "null"},
        {"at__gt": "null"},
        {"filter": json.dumps({"attr": "value", "op": "gte", "value": None})},
        {"filter": json.dumps({"attr": "value", "op": "lt", "value": "NaN"})},
        {"value__in": ["NaN", "1"]},
    ],
)
def test_range_filters_with_null_or_nan_are_422(client: Any, query: dict[str, Any]) -> None:
    r = client.get("/api/measure", params=query)
    assert r.status_code == 422, r.text
    assert client.get("/api/measure/_count", params=query).status_code == 422
    _still_works(client)


@pytest.mark.parametrize(
    "text",
    [
        "0001-01-01T00:00:00Z",
        "9999-12-31T23:59:59.999999Z",
        "0001-01-01T00:00:00+05:00",
        "9999-12-31T23:00:00-05:00",
        "1000-01-01T00:00:00Z",
        "1969-12-31T23:59:59.999999Z",
    ],
)
def test_datetimes_at_the_ends_of_the_range(client: Any, text: str) -> None:
    key = "d-" + uuid.uuid4().hex[:6]
    r = client.post("/api/measure", json={"id": key, "at": text})
    assert r.status_code in (201, 422), r.text
    if r.status_code == 422:
        assert r.json()["field"] == "at"
    else:
        stored = r.json()["at"]
        assert client.get(f"/api/measure/{key}").json()["at"] == stored
        found = client.get("/api/measure", params={"at": stored, "id": key}).json()["items"]
        assert [m["id"] for m in found] == [key]
    for op in ("", "__gte", "__lte"):
        r = client.get("/api/measure/_count", params={"at" + op: text})
        assert r.status_code in (200, 422), r.text
    _still_works(client)


def test_deeply_nested_json_is_422(client: Any) -> None:
    leaf = '{"attr": "id", "op": "eq", "value": "x"}'
    r = client.get("/api/measure", params={"filter": _deep_json(1000, leaf)})
    assert r.status_code == 422, r.text
    nested_or = '{"or":[' * 1000 + leaf + "]}" * 1000
    assert client.get("/api/measure", params={"filter": nested_or}).status_code == 422
    nested_and = '{"and":[' * 150 + leaf + "]}" * 150
    assert client.get("/api/measure", params={"filter": nested_and}).status_code == 422
    headers = {"content-type": "application/json"}
    body = '{"id": "deep", "data": ' + _deep_doc(1000) + "}"
    r = client.post("/api/measure", content=body, headers=headers)
    assert r.status_code == 422, r.text
    assert client.get("/api/measure/deep").status_code == 404
    assert client.post("/api/measure", json={"id": "pre"}).status_code == 201
    deep_or = '{"or":[' * 1000 + leaf + "]}" * 1000
    for precondition in (_deep_json(1000, leaf), deep_or):
        edit = (
            '{"edits": [{"op": "patch", "key": "pre", "changes": {"value": 2},'
            ' "precondition": ' + precondition + "}]}"
        )
        r = client.post("/api/measure/_batch/edit", content=edit, headers=headers)
        assert r.status_code in (200, 422), r.text
        if r.status_code == 200:
            assert r.json()["results"][0]["code"] == "validation_error", r.text
    assert client.get("/api/measure/pre").json()["value"] is None
    _still_works(client)


def test_two_megabyte_key(client: Any) -> None:
    key = "k" * (2 * 1024 * 1024)
    r = client.post("/api/measure", json={"id": key, "value": 1.0})
    assert r.status_code in (201, 422), r.text[:200]
    if r.status_code == 201:
        r = client.post("/api/measure/_batch/read", json={"keys": [key]})
        assert r.status_code == 200 and r.json()["items"][0]["id"] == key
    _still_works(client)
