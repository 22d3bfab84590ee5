"""GraphQL: queries and mutations per store, typed filters, errors, and nested relations
loaded with one batched read per level."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient
from tests.serve.serve_models import Author, Note, Page, Post

import persisty.aio
from persisty.serve import Link, app
from persisty.store import AsyncWrappedStore


class Counting(AsyncWrappedStore[Any]):
    calls: list[str] = []

    async def read_batch(self, keys: Any) -> Any:
        Counting.calls.append(f"{self.meta.name}.read_batch({len(keys)})")
        return await self.inner.read_batch(keys)

    async def search(self, *args: Any, **kwargs: Any) -> Any:
        Counting.calls.append(f"{self.meta.name}.search")
        return await self.inner.search(*args, **kwargs)


@pytest.fixture
def client() -> Any:
    db = persisty.aio.connect("memory://")
    opened = db._open
    db._open = lambda meta: Counting(opened(meta))  # type: ignore[method-assign]
    asgi = app(
        db, [Note, Page, Author, Post], links=[Link(Post, "author_id", Author, back="posts")]
    )
    with TestClient(asgi) as c:
        yield c


def gql(client: Any, query: str, **variables: Any) -> Any:
    r = client.post("/graphql", json={"query": query, "variables": variables})
    assert r.status_code in (200, 400), r.text
    return r.json()


def test_crud_and_search(client: Any) -> None:
    m = gql(
        client,
        """mutation($p: PageCreateInput!) { createPage(item: $p) {
        owner slug views _key _etag } }""",
        p={"owner": "ann", "slug": "a", "views": 2},
    )
    page = m["data"]["createPage"]
    assert page["_key"] == "ann:a" and page["views"] == 2
    for i in range(5):
        gql(
            client,
            "mutation($p: PageCreateInput!) { createPage(item: $p) { slug } }",
            p={"owner": "bob", "slug": f"s{i}", "views": i},
        )
    r = gql(
        client,
        """{ pageSearch(filter: {owner: "bob", views_gte: 1, or: [
        {slug_in: ["s1", "s2"]}, {views: 4}]}, order: ["-views"], limit: 2) {
        items { slug } next_page_key } pageCount(filter: {owner_ne: "ann"}) }""",
    )
    assert [p["slug"] for p in r["data"]["pageSearch"]["items"]] == ["s4", "s2"]
    assert r["data"]["pageCount"] == 5
    nxt = r["data"]["pageSearch"]["next_page_key"]
    r = gql(
        client,
        """query($k: String) { pageSearch(filter: {owner: "bob", views_gte: 1, or: [
        {slug_in: ["s1", "s2"]}, {views: 4}]}, order: ["-views"], limit: 2, page_key: $k) {
        items { slug } next_page_key } }""",
        k=nxt,
    )
    assert [p["slug"] for p in r["data"]["pageSearch"]["items"]] == ["s1"]
    r = gql(
        client,
        """{ page(key: "ann:a") { views } missing: page(key: "x:y") { views }
        pageBatch(keys: ["ann:a", "no:pe"]) { slug } }""",
    )
    assert r["data"] == {"page": {"views": 2}, "missing": None, "pageBatch": [{"slug": "a"}, None]}
    r = gql(
        client,
        """mutation { patchPage(key: "ann:a", changes: {views: 7}) { views }
        updatePage(item: {owner: "bob", slug: "s0", body: "hi"}) { body views } }""",
    )
    assert r["data"] == {"patchPage": {"views": 7}, "updatePage": {"body": "hi", "views": 0}}
    r = gql(
        client,
        """mutation { editPageBatch(atomic: false, edits: [
        {op: create, item: {owner: "c", slug: "1"}}, {op: delete, key: "nope:x"},
        {op: patch, key: "c:1", changes: {body: "b"}}]) { ok code item { body } } }""",
    )
    assert r["data"]["editPageBatch"] == [
        {"ok": True, "code": None, "item": {"body": ""}},
        {"ok": False, "code": "not_found", "item": None},
        {"ok": True, "code": None, "item": {"body": "b"}},
    ]
    r = gql(client, 'mutation { deletePage(key: "c:1") }')
    assert r["data"] == {"deletePage": True}


def test_typed_values_and_errors(client: Any) -> None:
    r = gql(
        client,
        """mutation { createNote(item: {owner: "ann", title: "t", tags: ["x"],
        due: "2024-02-03", mood: "happy"}) { id due mood tags created_at } }""",
    )
    note = r["data"]["createNote"]
    assert note["due"] == "2024-02-03" and note["mood"] == "happy" and note["tags"] == ["x"]
    r = gql(
        client,
        '{ noteSearch(filter: {due_lt: "2025-01-01", tags_contains: "x"}) { items { id } } }',
    )
    assert r["data"]["noteSearch"]["items"] == [{"id": note["id"]}]
    r = gql(client, '{ noteSearch(filter: {due_lt: "not a date"}) { items { id } } }')
    assert r["errors"][0]["extensions"] == {"code": "validation_error", "field": "due"}
    r = gql(client, 'mutation { createPage(item: {owner: "a", slug: "b", views: -1}) { slug } }')
    assert r["errors"][0]["extensions"]["field"] == "views"
    gql(client, 'mutation { createPage(item: {owner: "a", slug: "b"}) { slug } }')
    r = gql(client, 'mutation { createPage(item: {owner: "a", slug: "b"}) { slug } }')
    assert r["errors"][0]["extensions"]["code"] == "conflict"
    r = gql(
        client, 'mutation { patchPage(key: "a:b", changes: {views: 1}, if_match: "x") { slug } }'
    )
    assert r["errors"][0]["extensions"]["code"] == "precondition_failed"
    r = gql(client, "{ noteSearch(limit: 0) { items { id } } }")
    assert r["errors"][0]["extensions"]["field"] == "limit"
    r = gql(client, "{ nope }")
    assert r["errors"] and r["data"] is None
    assert client.post("/graphql", content=b"{").status_code == 400
    assert client.get("/graphql", headers={"Accept": "text/html"}).text.startswith("<!doctype")
    r = client.get("/graphql", params={"query": "{ pageCount }"})
    assert r.json() == {"data": {"pageCount": 1}}
    r = client.get("/graphql", params={"query": 'mutation { deletePage(key: "a:b") }'})
    assert r.status_code == 400


def test_relations_are_batched_per_level(client: Any) -> None:
    for a in ("ann", "bob", "cid"):
        gql(
            client,
            "mutation($a: AuthorCreateInput!) { createAuthor(item: $a) { id } }",
            a={"id": a, "name": a.upper()},
        )
    for i in range(12):
        gql(
            client,
            "mutation($p: PostCreateInput!) { createPost(item: $p) { id } }",
            p={"author_id": ["ann", "bob", "cid"][i % 3], "text": f"t{i}", "stars": i},
        )
    Counting.calls.clear()
    r = gql(
        client,
        """{ postSearch(order: ["stars"]) { items { text author { name
        posts { text author { id } } } } } }""",
    )
    items = r["data"]["postSearch"]["items"]
    assert len(items) == 12
    assert items[0]["author"]["name"] == "ANN"
    assert sorted(p["text"] for p in items[1]["author"]["posts"]) == ["t1", "t10", "t4", "t7"]
    assert all(p["author"]["id"] == "bob" for p in items[1]["author"]["posts"])
    # one search, then one batched read per relation and level (not one per item); a key
    # read once in a request is not read again
    assert Counting.calls.count("author.read_batch(3)") == 1, Counting.calls
    assert sum(c.startswith("post.search") for c in Counting.calls) == 2, Counting.calls


def test_declared_relations(tmp_path: Any) -> None:
    from tests.serve.serve_models import Person, Profile

    db = persisty.aio.connect(f"sqlite:///{tmp_path}/rel.db")
    with TestClient(app(db, [Person, Profile])) as c:
        for pid in ("p1", "p2"):
            assert c.post("/api/person", json={"id": pid}).status_code == 201
        r = c.post("/api/profile", json={"id": "a", "person_id": "p1", "bio": "hi"})
        assert r.status_code == 201
        r = c.post("/api/profile", json={"id": "b", "person_id": "nobody"})
        assert r.status_code in (404, 409, 422), r.text
        r = gql(c, '{ personSearch(order: ["id"]) { items { id profile { bio person { id } } } } }')
        assert r["data"]["personSearch"]["items"] == [
            {"id": "p1", "profile": {"bio": "hi", "person": {"id": "p1"}}},
            {"id": "p2", "profile": None},
        ]
        r = c.delete("/api/person/p1")
        assert r.status_code == 409, r.text  # blocked: a profile refers to it
        assert c.delete("/api/person/p2").status_code == 204
