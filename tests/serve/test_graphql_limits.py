"""Issue 10, findings 6 and 7: GraphQL has depth, cost, root-field and batch limits, pushes
``limit`` into child searches, and a query of any shape finishes within 2 s or is refused
before it runs, while a concurrent REST request is answered in < 100 ms (real HTTP: uvicorn
on a loopback port, SQLite)."""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient
from tests.serve.serve_models import Author, Post

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
    """``gql_timing_app`` under uvicorn in a process of its own, on a loopback port."""
    path = tmp_path_factory.mktemp("gql") / "gql.db"
    port = _free_port()
    root = Path(__file__).resolve().parents[2]
    env = {
        **os.environ,
        "PERSISTY_GQL_TIMING_DB": str(path),
        "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]),
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "tests.serve.gql_timing_app:asgi",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        cwd=root,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        assert proc.poll() is None, "the server exited"
        assert time.monotonic() < deadline, "the server did not start"
        try:
            if httpx.get(f"{url}/api/author/a1", timeout=5).status_code == 200:
                break  # started and seeded
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    yield url
    proc.terminate()
    proc.wait(10)


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
        latencies: list[float] = []
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


# the heaviest queries the default cost (10,000 items) lets through: four lists of 1,000 with
# a relation each, and nine flat lists of 1,000
HEAVIEST_NESTED = (
    "{ "
    + " ".join(
        f"s{i}: postSearch(limit: 1000) {{ items {{ id text stars author {{ name }} }} }}"
        for i in range(4)
    )
    + " }"
)
HEAVIEST_FLAT = (
    "{ "
    + " ".join(f"s{i}: postSearch(limit: 1000) {{ items {{ id text stars }} }}" for i in range(9))
    + " }"
)


def _rest_latencies_during(server: str, query: str) -> tuple[list[float], dict[str, Any]]:
    """REST read latencies sampled while ``query`` runs (twice in a row, for more samples)."""
    done: dict[str, Any] = {"bodies": []}
    with httpx.Client(base_url=server, timeout=30) as c:
        c.get("/api/author/a1")  # a warm connection: the handshake is not measured

        def run() -> None:
            with httpx.Client(base_url=server, timeout=30) as g:
                for _ in range(2):
                    r = g.post("/graphql", json={"query": query})
                    done["bodies"].append((r.status_code, r.json()))

        worker = threading.Thread(target=run)
        worker.start()
        latencies: list[float] = []
        while worker.is_alive():
            t = time.monotonic()
            assert c.get("/api/author/a1").status_code == 200
            latencies.append(time.monotonic() - t)
            time.sleep(0.005)
        worker.join(30)
    return latencies, done


@pytest.mark.parametrize("query", [HEAVIEST_NESTED, HEAVIEST_FLAT])
def test_the_slowest_rest_request_stays_under_100ms_during_the_heaviest_query(
    server: str, query: str
) -> None:
    """Every REST request, not only the median, is answered in < 100 ms while the heaviest
    allowed GraphQL query runs: the executor completes long lists a slice at a time and gives
    the event loop back in between (graphql-core alone completes 1,000 items in one turn,
    which held REST requests up for 300-700 ms).

    Two measures: the longest turn of the server's event loop in CPU time of its thread
    (what a request arriving meanwhile waits for, unaffected by what else the machine runs:
    < 50 ms, where graphql-core alone takes 140-190 ms), and the slowest REST request as its
    client sees it (< 100 ms; on a machine with more runnable processes than cores, every
    process waits for a core, so the bound grows with the load average per core). A run whose
    slowest request was slowed by something else is tried again, at most three times."""
    runs = []
    for _ in range(3):
        httpx.get(f"{server}/_probe/loop")  # reset
        latencies, done = _rest_latencies_during(server, query)
        busiest = httpx.get(f"{server}/_probe/loop").json()["cpu_seconds"]
        for status, body in done["bodies"]:
            assert status == 200 and "errors" not in body, str(body)[:300]
            assert [len(v["items"]) for v in body["data"].values()] == [1000] * len(body["data"])
        assert len(latencies) >= 5, latencies  # the query ran long enough to be measured
        load = os.getloadavg()[0] / (os.cpu_count() or 1)
        runs.append((max(latencies), busiest, 0.1 * max(1.0, load)))
        if max(latencies) < 0.1 and busiest < 0.05:
            break
    report = [
        f"slowest REST {w * 1000:.0f} ms (bound {bound * 1000:.0f} ms), busiest loop "
        f"turn {b * 1000:.0f} ms CPU"
        for w, b, bound in runs
    ]
    assert min(b for _, b, _ in runs) < 0.05, report
    assert any(w < bound for w, _, bound in runs), report
