"""Issue 10, findings 6 and 7: GraphQL has depth, cost, root-field and batch limits, pushes
``limit`` into child searches, and a query of any shape finishes within 2 s or is refused
before it runs, while a concurrent REST request is answered in < 100 ms (real HTTP: uvicorn
on a loopback port, SQLite)."""

from __future__ import annotations

import socket
import statistics
import threading
import time
import uuid
from typing import Any

import httpx
import pytest
import uvicorn
from serve_models import Author, Post
from starlette.testclient import TestClient

import persisty.aio
from persisty.serve import Limits, Link, app
from persisty.store import AsyncWrappedStore

LINKS = [Link(Post, "author_id", Author, back="posts")]
CYCLE = "{ postSearch { items { " + "author { posts { " * 8 + "id" + " } }" * 8 + " } } }"
FAN_OUT = (
    "{ postSearch(limit: 1000) { items { author { posts(limit: 1000) { author { "
    "posts(limit: 1000) { id } } } } } } }"
)
ALIASES = (
    "{ " + " ".join(f"a{i}: postSearch(limit: 1) {{ items {{ id }} }}" for i in range(2000)) + " }"
)
MUTATIONS = (
    "mutation { "
    + " ".join(f'm{i}: createAuthor(item: {{id: "x{i}", name: "n"}}) {{ id }}' for i in range(1500))
    + " }"
)
# fragments spread twice at every level: 2**40 fields if expanded naively
DOUBLING = (
    "query { authorSearch { items { ...F0 } } } "
    + " ".join(f"fragment F{i} on Author {{ id ...F{i + 1} ...F{i + 1} }}" for i in range(40))
    + " fragment F40 on Author { name }"
)
FRAGMENTS = (
    "query { postSearch { items { ...A } } } fragment A on Post { author { ...B } } "
    "fragment B on Author { posts { ...A } }"
)


class Counting(AsyncWrappedStore[Any]):
    """Records the limit of every search and how many items came back."""

    searches: list[tuple[str, int | None, int]] = []

    async def search(
        self, filter: Any = None, order: Any = None, limit: Any = None, page_key: Any = None
    ) -> Any:
        page = await self.inner.search(filter, order, limit, page_key)
        Counting.searches.append((self.meta.name, limit, len(page.items)))
        return page


@pytest.fixture
def client() -> Any:
    db = persisty.aio.connect("memory://")
    opened = db._open
    db._open = lambda meta: Counting(opened(meta))  # type: ignore[method-assign]
    with TestClient(app(db, [Author, Post], links=LINKS)) as c:
        yield c


def _codes(r: Any) -> list[str]:
    return [e.get("extensions", {}).get("code") for e in r.json().get("errors", [])]


def test_hostile_shapes_are_refused_before_they_run(client: Any) -> None:
    assert client.post("/api/author", json={"id": "a", "name": "A"}).status_code == 201
    for query, code in (
        (CYCLE, "too_deep"),
        (FAN_OUT, "too_costly"),
        (ALIASES, "too_many_root_fields"),
        (MUTATIONS, "too_many_root_fields"),
    ):
        Counting.searches.clear()
        r = client.post("/graphql", json={"query": query})
        assert r.status_code == 400 and r.json()["data"] is None, r.text[:300]
        assert (
            _codes(r) == [code]
            or (query is CYCLE and _codes(r) == ["too_costly"])
            or (code == "too_many_root_fields" and _codes(r) == ["too_large"])
        )  # tokens first
        assert Counting.searches == []  # nothing ran
    t = time.monotonic()
    r = client.post("/graphql", json={"query": DOUBLING})
    assert r.status_code == 400 and time.monotonic() - t < 2, r.text[:300]
    few = "{ " + " ".join(f"a{i}: postSearch(limit: 1) {{ items {{ id }} }}" for i in range(21))
    assert _codes(client.post("/graphql", json={"query": few + " }"})) == ["too_many_root_fields"]
    r = client.post("/graphql", json={"query": FRAGMENTS})
    assert r.status_code == 400 and r.json()["errors"]  # a fragment cycle: invalid
    assert client.get("/api/author/_count").json() == {"count": 1}  # no mutation ran


def test_variables_count_in_the_cost_and_batches_are_capped() -> None:
    db = persisty.aio.connect("memory://")
    limits = Limits(graphql_cost=500, graphql_batch=10)
    with TestClient(app(db, [Author, Post], links=LINKS, limits=limits)) as c:
        q = "query($n: Int) { postSearch(limit: $n) { items { id } } }"
        assert c.post("/graphql", json={"query": q, "variables": {"n": 100}}).status_code == 200
        r = c.post("/graphql", json={"query": q, "variables": {"n": 1000}})
        assert _codes(r) == ["too_costly"]
        q = "query($k: [String!]!) { authorBatch(keys: $k) { id } }"
        r = c.post("/graphql", json={"query": q, "variables": {"k": [str(i) for i in range(11)]}})
        assert r.json()["errors"] and r.status_code in (200, 400)
        edits = [{"op": "create", "item": {"id": f"e{i}"}} for i in range(11)]
        r = c.post(
            "/graphql",
            json={
                "query": "mutation($e: [AuthorEditInput!]!) { editAuthorBatch(edits: $e) { ok } }",
                "variables": {"e": edits},
            },
        )
        assert r.json()["errors"] and c.get("/api/author/_count").json() == {"count": 0}


def test_limit_is_pushed_into_child_searches(client: Any) -> None:
    for a in ("a", "b"):
        client.post("/api/author", json={"id": a, "name": a.upper()})
    r = client.post(
        "/api/post/_batch/edit",
        json={
            "edits": [
                {"op": "create", "item": {"author_id": "a" if i % 5 else "b", "text": f"t{i}"}}
                for i in range(200)
            ]
        },
    )
    assert all(x["ok"] for x in r.json()["results"])
    Counting.searches.clear()
    r = client.post(
        "/graphql",
        json={"query": '{ authorSearch(order: ["id"]) { items { id posts(limit: 3) { text } } } }'},
    )
    items = r.json()["data"]["authorSearch"]["items"]
    assert [len(i["posts"]) for i in items] == [3, 3]
    post_searches = [s for s in Counting.searches if s[0] == "post"]
    assert post_searches and all(
        limit is not None and limit <= 6 and n <= 6 for _, limit, n in post_searches
    ), post_searches
    r = client.post(
        "/graphql", json={"query": "{ authorSearch { items { posts(limit: 0) { id } } } }"}
    )
    assert r.json()["errors"][0]["extensions"]["field"] == "limit"


# ---- timing, over real HTTP -------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def server(tmp_path_factory: Any) -> Any:
    path = tmp_path_factory.mktemp("gql") / "gql.db"
    db = persisty.aio.connect(f"sqlite:///{path}", namespace="t" + uuid.uuid4().hex[:8])

    async def seed() -> None:
        authors, posts = db.store(Author), db.store(Post)
        from persisty.store import Edit

        await authors.edit_batch([Edit.create(Author(id=f"a{i}", name=f"n{i}")) for i in range(20)])
        await posts.edit_batch(
            [
                Edit.create(
                    Post(id=uuid.uuid4(), author_id=f"a{i % 20}", text=f"post {i}", stars=i)
                )
                for i in range(1000)
            ]
        )

    asgi = app(db, [Author, Post], links=LINKS, on_startup=[seed])
    port = _free_port()
    srv = uvicorn.Server(uvicorn.Config(asgi, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(10)


# the heaviest shapes the default limits let through, and the hostile ones
HEAVY = (
    "{ postSearch(limit: 1000) { items { text author { name posts(limit: 20) { text "
    "author { name } } } } } }"
)
WIDE = (
    "{ "
    + " ".join(
        f's{i}: postSearch(limit: 1000, order: ["-stars"]) {{ items {{ id text '
        f"stars author {{ name }} }} }}"
        for i in range(20)
    )
    + " }"
)
# shapes the default cost lets through: two lists of 1,000 with a relation, and a nested
# has-many with default limits
ALLOWED = (
    "{ "
    + " ".join(
        f"s{i}: postSearch(limit: 1000) {{ items {{ id text stars author {{ name }} }} }}"
        for i in range(2)
    )
    + " }"
)
NESTED = "{ postSearch { items { text author { name posts { text author { name } } } } } }"


@pytest.mark.parametrize(
    "query", [HEAVY, WIDE, ALLOWED, NESTED, CYCLE, FAN_OUT, ALIASES, FRAGMENTS, DOUBLING]
)
def test_any_query_finishes_in_2s_and_rest_stays_responsive(server: str, query: str) -> None:
    with httpx.Client(base_url=server, timeout=30) as c:
        key = c.get("/api/author/a1")
        assert key.status_code == 200
        c.post("/graphql", json={"query": "{ postCount }"})  # warm up
        done: dict[str, Any] = {}

        def run() -> None:
            with httpx.Client(base_url=server, timeout=30) as g:
                t = time.monotonic()
                r = g.post("/graphql", json={"query": query})
                done["elapsed"], done["status"] = time.monotonic() - t, r.status_code
                done["body"] = r.json()

        worker = threading.Thread(target=run)
        worker.start()
        latencies = []
        while worker.is_alive() and len(latencies) < 200:
            t = time.monotonic()
            assert c.get("/api/author/a1").status_code == 200
            latencies.append(time.monotonic() - t)
            time.sleep(0.01)
        worker.join(30)
    refused = done["status"] == 400 and done["body"]["data"] is None
    assert refused or done["elapsed"] < 2.0, (done["elapsed"], str(done["body"])[:200])
    if not refused:
        assert (
            "errors" not in done["body"]
            or done["body"]["errors"][0]["extensions"]["code"] == "timeout"
        )
    if len(latencies) >= 5:  # a query refused at once leaves nothing to measure
        assert statistics.median(latencies) < 0.1, latencies
