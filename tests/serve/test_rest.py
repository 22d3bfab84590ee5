"""The REST API: every route, status codes, errors, ETags, caching headers and CORS."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.testclient import TestClient
from tests.serve.serve_models import Note, Page

import persisty.aio
from persisty.model import meta_of
from persisty.serve import app, router

URLS = ["memory://", "sqlite"]


def _db(url: str, tmp_path: Any) -> Any:
    if url == "sqlite":
        url = f"sqlite:///{tmp_path}/serve.db"
    return persisty.aio.connect(url, namespace="t" + uuid.uuid4().hex[:8])


@pytest.fixture(params=URLS)
def client(request: Any, tmp_path: Any) -> Any:
    asgi = app(
        _db(request.param, tmp_path),
        [Note, Page],
        cache_control={Note: "private, no-cache"},
        cors=["https://example.com"],
    )
    with TestClient(asgi) as c:
        yield c


def test_create_read_etag_304(client: Any) -> None:
    r = client.post("/api/note", json={"owner": "ann", "title": "hello", "tags": ["a"]})
    assert r.status_code == 201
    body = r.json()
    assert body["owner"] == "ann" and body["created_at"]
    loc = r.headers["location"]
    assert loc == f"/api/note/{body['id']}"
    tag = r.headers["etag"]
    got = client.get(loc)
    assert got.status_code == 200 and got.json() == body
    assert got.headers["etag"] == tag
    assert got.headers["cache-control"] == "private, no-cache"
    assert client.get(loc, headers={"If-None-Match": tag}).status_code == 304
    assert client.get(loc, headers={"If-None-Match": '"other"'}).status_code == 200
    assert client.get(loc, headers={"If-None-Match": "*"}).status_code == 304


def test_search_filter_order_pages(client: Any) -> None:
    for i in range(7):
        client.post(
            "/api/note", json={"owner": "ann" if i % 2 else "bob", "title": f"t{i}", "priority": i}
        )
    r = client.get("/api/note", params={"owner": "ann", "order": "-priority"})
    assert [n["priority"] for n in r.json()["items"]] == [5, 3, 1]
    seen: list[int] = []
    params: dict[str, Any] = {"order": "priority", "limit": 2, "priority__gte": 1}
    while True:
        page = client.get("/api/note", params=params).json()
        seen += [n["priority"] for n in page["items"]]
        if page["next_page_key"] is None:
            break
        params["page_key"] = page["next_page_key"]
    assert seen == [1, 2, 3, 4, 5, 6]
    r = client.get("/api/note?priority__in=1&priority__in=4&order=priority")
    assert [n["priority"] for n in r.json()["items"]] == [1, 4]
    r = client.get("/api/note", params={"title__istartswith": "T", "priority__lt": 2})
    assert len(r.json()["items"]) == 2
    f = (
        '{"or": [{"attr": "priority", "op": "eq", "value": 0}, '
        '{"attr": "priority", "op": "eq", "value": 6}]}'
    )
    assert len(client.get("/api/note", params={"filter": f}).json()["items"]) == 2
    assert client.get("/api/note/_count", params={"owner": "bob"}).json() == {"count": 4}
    assert client.get("/api/note/_count").headers["cache-control"] == "private, no-cache"


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("priority__gte=x", "priority"),
        ("nope=1", "nope"),
        ("limit=0", "limit"),
        ("limit=abc", "limit"),
        ("limit=100000", "limit"),
        ("page_key=forged", "page_key"),
        ("owner__zz=1", "owner"),
        ("order=tags", "tags"),
        ("filter=%7Bbad", "filter"),
        ("tags__gt=1", "tags"),
    ],
)
def test_bad_search_is_422_naming_the_field(client: Any, query: str, field: str) -> None:
    r = client.get("/api/note?" + query)
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "validation_error"
    assert r.json()["field"] == field


def test_bad_bodies(client: Any) -> None:
    r = client.post("/api/note", content=b"{bad", headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["code"] == "bad_request"
    assert client.post("/api/note", content=b"").status_code == 400
    r = client.post("/api/note", json=[1, 2])
    assert r.status_code == 422
    r = client.post("/api/note", json={"owner": "ann"})
    assert r.status_code == 422 and r.json()["field"] == "title"
    r = client.post(
        "/api/note", json={"owner": "ann", "title": "x", "created_at": "2020-01-01T00:00:00Z"}
    )
    assert r.status_code == 422 and r.json()["field"] == "created_at"
    r = client.post("/api/note", json={"owner": "ann", "title": "x", "color": 1})
    assert r.status_code == 422 and r.json()["field"] == "color"
    r = client.post("/api/note", json={"owner": "ann", "title": "x" * 201})
    assert r.status_code == 422 and r.json()["field"] == "title"
    r = client.post("/api/page", json={"owner": "ann", "slug": "s", "views": -1})
    assert r.status_code == 422 and r.json()["field"] == "views"
    assert client.get("/api/note/_count").json() == {"count": 0}
    assert client.get("/api/page/_count").json() == {"count": 0}


def test_conflict_and_not_found(client: Any) -> None:
    assert client.post("/api/page", json={"owner": "a", "slug": "s"}).status_code == 201
    r = client.post("/api/page", json={"owner": "a", "slug": "s"})
    assert r.status_code == 409 and r.json()["code"] == "conflict"
    assert client.get("/api/page/a:zz").status_code == 404
    assert client.get("/api/page/only-one-part").status_code == 422
    assert client.get(f"/api/note/{uuid.uuid4()}").json()["code"] == "not_found"
    assert client.get("/api/note/not-a-uuid").status_code == 422
    assert client.patch("/api/page/a:zz", json={"views": 1}).status_code == 404
    assert client.put("/api/page/a:zz", json={"body": "b"}).status_code == 404
    assert client.delete("/api/page/a:zz").status_code == 404
    r = client.get("/api/unknown")
    assert r.status_code == 404 and r.json()["code"] == "not_found"
    assert client.request("TRACE", "/api/page").status_code == 405


def test_update_patch_delete_with_if_match(client: Any) -> None:
    r = client.post("/api/page", json={"owner": "ann", "slug": "home", "body": "v1"})
    tag = r.headers["etag"]
    r = client.put("/api/page/ann:home", json={"body": "v2"}, headers={"If-Match": '"nope"'})
    assert r.status_code == 412
    r = client.put("/api/page/ann:home", json={"body": "v2"}, headers={"If-Match": tag})
    assert r.status_code == 200 and r.json()["body"] == "v2" and r.json()["views"] == 0
    tag2 = r.headers["etag"]
    assert tag2 != tag
    r = client.put("/api/page/ann:home", json={"owner": "bob", "body": "x"})
    assert r.status_code == 422 and r.json()["field"] == "owner"
    r = client.patch("/api/page/ann:home", json={"views": 5}, headers={"If-Match": tag})
    assert r.status_code == 412
    r = client.patch("/api/page/ann:home", json={"views": 5}, headers={"If-Match": tag2})
    assert r.status_code == 200 and r.json()["views"] == 5
    r = client.patch("/api/page/ann:home", json={"slug": "other"})
    assert r.status_code == 422 and r.json()["field"] == "slug"
    r = client.patch("/api/page/ann:home", json={"views": "many"})
    assert r.status_code == 422 and r.json()["field"] == "views"
    r = client.patch("/api/page/ann:home", json={"views": 6}, headers={"If-Match": "*"})
    assert r.status_code == 200
    assert client.delete("/api/page/ann:home", headers={"If-Match": tag2}).status_code == 412
    assert client.delete("/api/page/ann:home", headers={"If-Match": "*"}).status_code == 204
    assert client.delete("/api/page/ann:x", headers={"If-Match": "*"}).status_code == 412
    assert client.get("/api/page/ann:home").status_code == 404


def test_batches(client: Any) -> None:
    r = client.post(
        "/api/page/_batch/edit",
        json={
            "edits": [
                {"op": "create", "item": {"owner": "a", "slug": "1"}},
                {"op": "create", "item": {"owner": "a", "slug": "2", "body": "b"}},
            ]
        },
    )
    assert [x["ok"] for x in r.json()["results"]] == [True, True]
    r = client.post(
        "/api/page/_batch/edit",
        json={
            "atomic": True,
            "edits": [
                {"op": "patch", "key": "a:1", "changes": {"views": 9}},
                {"op": "delete", "key": "a:nope"},
            ],
        },
    )
    assert r.status_code == 200
    assert [x["code"] for x in r.json()["results"]] == ["aborted", "not_found"]
    assert client.get("/api/page/a:1").json()["views"] == 0
    r = client.post(
        "/api/page/_batch/edit",
        json={
            "atomic": False,
            "edits": [
                {"op": "update", "item": {"owner": "a", "slug": "1", "body": "new"}},
                {"op": "delete", "key": "a:2"},
                {"op": "patch", "key": "a:1", "changes": {"views": 1}, "if_match": "bad"},
            ],
        },
    )
    assert [x["code"] for x in r.json()["results"]] == [None, None, "precondition_failed"]
    r = client.post("/api/page/_batch/read", json={"keys": ["a:1", "a:2"]})
    assert [x and x["body"] for x in r.json()["items"]] == ["new", None]
    for bad in (
        {"keys": "a:1"},
        {"keys": [1]},
        {"edits": 3},
        {"edits": [{"op": "zap"}]},
        {"edits": [{"op": "create", "item": {"owner": "a", "slug": "1", "x": 1}}]},
        {"edits": [{"op": "delete", "key": "a:1", "extra": 1}]},
    ):
        path = "/api/page/_batch/read" if "keys" in bad else "/api/page/_batch/edit"
        assert client.post(path, json=bad).status_code == 422, bad


def test_index(client: Any) -> None:
    r = client.get("/api")
    assert r.json()["stores"]["page"]["href"] == "/api/page"
    assert r.json()["openapi"] == "/api/openapi.json"


def test_cors(client: Any) -> None:
    r = client.options(
        "/api/note",
        headers={"Origin": "https://example.com", "Access-Control-Request-Method": "PATCH"},
    )
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == "https://example.com"
    r = client.get("/api/note", headers={"Origin": "https://example.com"})
    assert "etag" in r.headers["access-control-expose-headers"].lower()
    r = client.options(
        "/api/note",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
    )
    assert r.status_code == 400


def test_router_mounts_in_another_app(tmp_path: Any) -> None:
    site = Starlette(
        routes=[Mount("/data", routes=router(_db("memory://", tmp_path), [Note]).routes)]
    )
    with TestClient(site) as c:
        r = c.post("/data/api/note", json={"owner": "x", "title": "y"})
        assert r.status_code == 201
        assert c.get("/data/api/note").json()["items"][0]["owner"] == "x"


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(owner=st.text(min_size=1, max_size=10), slug=st.text(min_size=1, max_size=10))
def test_any_key_round_trips_through_the_url(tmp_path: Any, owner: str, slug: str) -> None:
    with TestClient(app(_db("memory://", tmp_path), [Page])) as c:
        r = c.post("/api/page", json={"owner": owner, "slug": slug})
        assert r.status_code == 201, r.text
        loc = r.headers["location"]
        got = c.get(loc)
        assert got.status_code == 200 and (got.json()["owner"], got.json()["slug"]) == (owner, slug)
        key = meta_of(Page).key_of(Page(owner=owner, slug=slug))
        assert loc == "/api/page/" + quote(key, safe="")
