"""Serving runtime-defined stores without a restart, against running ``persisty serve``
processes: define over HTTP, then REST, filtered search, OpenAPI and GraphQL on it, 404
after a drop; two processes on one PostgreSQL see each other's changes within 1 s;
non-admins get 403; namespaces keep their own definitions; CSV imports per row."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.conftest import POSTGRES_URL, REDIS_URL

import persisty
import persisty.dynamic
from persisty.model import etag
from persisty.serve import JWTAuth

ROOT = Path(__file__).resolve().parents[2]
SECRET = "a test secret that is long enough for HS256 tokens!"
AUTH = JWTAuth(secret=SECRET)
ADMIN = {"Authorization": "Bearer " + AUTH.issue("ann", ["admin"])}
USER = {"Authorization": "Bearer " + AUTH.issue("bob", ["user"])}
TASKS: dict[str, Any] = {
    "name": "tasks",
    "attrs": {
        "id": {"type": "uuid"},
        "title": {"type": "str"},
        "done": {"type": "bool", "default": False},
    },
    "indexes": ["done"],
}


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(
        self, url: str, ns: str, secret: str | None = None, staleness: float = 1.0
    ) -> None:
        self.port = _port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = {
            **os.environ,
            "DYN_URL": url,
            "DYN_NS": ns,
            "DYN_STALENESS": str(staleness),
            "PYTHONPATH": str(ROOT),
        }
        if secret:
            env["DYN_SECRET"] = secret
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "persisty",
                "serve",
                "tests.dynamic.dyn_app:asgi",
                "--port",
                str(self.port),
                "--log-level",
                "warning",
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                httpx.get(self.base + "/api", timeout=1)
                break
            except httpx.HTTPError:
                if self.proc.poll() is not None:
                    raise RuntimeError(
                        self.proc.stderr.read().decode()  # type: ignore[union-attr]
                    ) from None
                time.sleep(0.1)
        self.client = httpx.Client(base_url=self.base, timeout=10)

    def close(self) -> None:
        self.client.close()
        self.proc.terminate()
        self.proc.wait(10)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Server]:
    s = Server(f"sqlite:///{tmp_path / 'app.db'}", "t" + uuid.uuid4().hex[:8])
    yield s
    s.close()


def test_define_serve_and_drop_without_restart(served: Server) -> None:
    c = served.client
    assert c.get("/api/tasks").status_code == 404
    r = c.post("/api/_schemas", json=TASKS)
    assert r.status_code == 201, r.text
    tag = r.headers["etag"]
    r = c.post("/api/tasks", json={"title": "write docs"})
    assert r.status_code == 201, r.text
    c.post("/api/tasks", json={"title": "ship", "done": True})
    found = c.get("/api/tasks", params={"done": "true"}).json()["items"]
    assert [t["title"] for t in found] == ["ship"]
    assert c.get("/api/tasks/_count").json()["count"] == 2
    spec = c.get("/api/openapi.json").json()
    assert "/api/tasks" in spec["paths"] and "/api/tasks/{key}" in spec["paths"]
    q = c.post(
        "/graphql", json={"query": "{ tasksSearch(filter: {done: false}) { items { title } } }"}
    )
    assert q.status_code == 200, q.text
    assert q.json()["data"]["tasksSearch"]["items"] == [{"title": "write docs"}]

    # an additive alter: served at once, no fence
    wider = {**TASKS, "attrs": {**TASKS["attrs"], "due": {"type": "date", "optional": True}}}
    assert c.put("/api/_schemas/tasks", json=wider).status_code == 412  # no If-Match
    r = c.put("/api/_schemas/tasks", json=wider, headers={"If-Match": tag})
    assert r.status_code == 200, r.text
    assert c.post("/api/tasks", json={"title": "plan", "due": "2025-01-02"}).status_code == 201
    assert "due" in str(c.get("/api/openapi.json").json()["components"])
    assert (
        c.put("/api/_schemas/tasks", json=wider, headers={"If-Match": tag}).status_code == 412
    )  # a stale etag
    plan = c.post(
        "/api/_schemas/tasks/_plan", json={"name": "tasks", "attrs": {"id": {"type": "uuid"}}}
    ).json()
    assert plan["destructive"] is True

    assert c.delete("/api/_schemas/tasks").status_code == 204
    assert c.get("/api/tasks").status_code == 404
    assert c.post("/api/tasks", json={"title": "x"}).status_code == 404
    assert "/api/tasks" not in c.get("/api/openapi.json").json()["paths"]
    assert c.get("/api/_schemas").json() == {"items": []}
    # defined again: empty, the dropped rows never come back
    assert c.post("/api/_schemas", json=TASKS).status_code == 201
    assert c.get("/api/tasks").json()["items"] == []


def test_invalid_definitions_over_http_name_the_field(served: Server) -> None:
    c = served.client
    r = c.post("/api/_schemas", json={"name": "tasks", "attrs": {"id": {"type": "money"}}})
    assert r.status_code == 422 and r.json()["field"] == "attrs.id.type"
    r = c.post("/api/_schemas", json={"name": "_schemas", "attrs": {"id": "str"}})
    assert r.status_code == 422 and r.json()["field"] == "name"
    r = c.post(
        "/api/_schemas",
        json={
            "name": "pets",
            "key": "id",
            "json_schema": {
                "type": "object",
                "properties": {"id": {"type": "string"}, "x": {"oneOf": []}},
            },
        },
    )
    assert r.status_code == 422 and r.json()["field"] == "schema.properties.x.type"
    assert c.get("/api/_schemas").json() == {"items": []}


def _csv(bad: set[int]) -> str:
    lines = ["email,age"]
    for i in range(1000):
        lines.append(f"u{i}@x,{'old' if i in bad else i % 90}")
    return "\n".join(lines) + "\n"


def test_csv_import_reports_bad_rows_by_line(served: Server) -> None:
    c = served.client
    c.post(
        "/api/_schemas",
        json={
            "name": "people",
            "key": "email",
            "attrs": {"email": {"type": "str"}, "age": {"type": "int", "ge": 0}},
        },
    )
    body = _csv({10, 500, 998})
    r = c.post(
        "/api/people/_import?atomic=true", content=body, headers={"Content-Type": "text/csv"}
    )
    assert r.status_code == 422
    assert r.json()["imported"] == 0 and c.get("/api/people/_count").json()["count"] == 0
    r = c.post("/api/people/_import", content=body, headers={"Content-Type": "text/csv"})
    assert r.status_code == 200
    report = r.json()
    assert report["imported"] == 997
    assert [(e["line"], e["field"]) for e in report["errors"]] == [
        (12, "age"),
        (502, "age"),
        (1000, "age"),
    ]  # the header is line 1
    assert c.get("/api/people/_count").json()["count"] == 997
    r = c.post(
        "/api/people/_import",
        content='{"email": "j@x", "age": 3}\n{"email": 5}\n',
        headers={"Content-Type": "application/x-ndjson"},
    )
    assert r.json()["imported"] == 1 and r.json()["errors"][0]["line"] == 2


def test_admin_scope_and_sharing_over_http(tmp_path: Path) -> None:
    s = Server(f"sqlite:///{tmp_path / 'auth.db'}", "a" + uuid.uuid4().hex[:8], SECRET)
    try:
        c = s.client
        assert c.post("/api/_schemas", json=TASKS).status_code == 401
        assert c.post("/api/_schemas", json=TASKS, headers=USER).status_code == 403
        assert c.post("/api/_schemas", json=TASKS, headers=ADMIN).status_code == 201
        assert c.get("/api/tasks", headers=ADMIN).status_code == 200
        assert c.get("/api/tasks", headers=USER).status_code == 404  # not shared
        assert c.get("/api/_schemas", headers=USER).json() == {"items": []}
        assert c.delete("/api/_schemas/tasks", headers=USER).status_code == 403
    finally:
        s.close()


def _wait_for(check: Any, limit: float) -> float:
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > limit:
            raise AssertionError("not seen in time")
        time.sleep(0.02)
    return time.monotonic() - start


def test_two_processes_on_postgresql_see_each_others_changes() -> None:
    ns = "p" + uuid.uuid4().hex[:8]
    one, two = Server(POSTGRES_URL, ns), Server(POSTGRES_URL, ns)
    try:
        r = one.client.post("/api/_schemas", json=TASKS)
        assert r.status_code == 201
        seen = _wait_for(lambda: two.client.get("/api/tasks").status_code == 200, 1.5)
        assert seen < 1.0
        wider = {**TASKS, "attrs": {**TASKS["attrs"], "due": {"type": "date", "optional": True}}}
        assert (
            two.client.put(
                "/api/_schemas/tasks", json=wider, headers={"If-Match": r.headers["etag"]}
            ).status_code
            == 200
        )
        start = time.monotonic()
        _wait_for(
            lambda: (
                one.client.post("/api/tasks", json={"title": "t", "due": "2025-01-01"}).status_code
                == 201
            ),
            1.5,
        )
        assert time.monotonic() - start < 1.0
        # the same etag again, from the other process: refused
        assert (
            one.client.put(
                "/api/_schemas/tasks", json=wider, headers={"If-Match": r.headers["etag"]}
            ).status_code
            == 412
        )
        one.client.delete("/api/_schemas/tasks")
    finally:
        one.close()
        two.close()


def test_namespaces_define_contacts_differently(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ns.db'}"
    a, b = Server(url, "na" + uuid.uuid4().hex[:6]), Server(url, "nb" + uuid.uuid4().hex[:6])
    try:
        a.client.post(
            "/api/_schemas", json={"name": "contacts", "key": "email", "attrs": {"email": "str"}}
        )
        b.client.post(
            "/api/_schemas",
            json={"name": "contacts", "key": "phone", "attrs": {"phone": "str", "age": "int"}},
        )
        assert a.client.post("/api/contacts", json={"email": "ann@x"}).status_code == 201
        assert a.client.post("/api/contacts", json={"phone": "1"}).status_code == 422
        assert b.client.post("/api/contacts", json={"phone": "1", "age": 3}).status_code == 201
        assert [x["email"] for x in a.client.get("/api/contacts").json()["items"]] == ["ann@x"]
        assert [x["phone"] for x in b.client.get("/api/contacts").json()["items"]] == ["1"]
    finally:
        a.close()
        b.close()


def _alters_seen(one: Server, two: Server, rounds: int) -> list[float]:
    """Alter ``rounds`` times, from either process in turn; how long the other one took
    to serve each new attribute."""
    r = one.client.post("/api/_schemas", json=TASKS)
    assert r.status_code == 201, r.text
    tag, spec = r.headers["etag"].strip('"'), TASKS
    seen = [_wait_for(lambda: two.client.get("/api/tasks").status_code == 200, 5)]
    for i in range(rounds):
        writer, reader = (one, two) if i % 2 else (two, one)
        spec = {**spec, "attrs": {**spec["attrs"], f"x{i}": {"type": "str", "optional": True}}}
        r = writer.client.put("/api/_schemas/tasks", json=spec, headers={"If-Match": tag})
        assert r.status_code == 200, r.text
        tag = r.headers["etag"].strip('"')
        item = {"title": "t", f"x{i}": "v"}
        seen.append(
            _wait_for(
                lambda c=reader.client, b=item: c.post("/api/tasks", json=b).status_code == 201, 5
            )
        )
    return seen


@pytest.mark.parametrize("url", [POSTGRES_URL, REDIS_URL], ids=["postgresql", "redis"])
def test_the_change_channel_tells_the_other_process_at_once(url: str) -> None:
    """PostgreSQL ``LISTEN``/``NOTIFY`` and Redis pub/sub: with a 30 s polling staleness,
    only the channel can tell the other process within a second."""
    ns = "c" + uuid.uuid4().hex[:8]
    one, two = Server(url, ns, staleness=30), Server(url, ns, staleness=30)
    try:
        seen = _alters_seen(one, two, 6)
        print(f"seen after (ms): {sorted(round(s * 1000) for s in seen)}")
        assert max(seen) < 1.0, seen
        one.client.delete("/api/_schemas/tasks")
        _wait_for(lambda: two.client.get("/api/tasks").status_code == 404, 1.0)
    finally:
        one.close()
        two.close()


def test_polled_processes_see_changes_within_the_staleness(tmp_path: Path) -> None:
    """SQLite has no channel: the change counter, polled at most every ``staleness``."""
    url, ns = f"sqlite:///{tmp_path / 'polled.db'}", "s" + uuid.uuid4().hex[:8]
    one, two = Server(url, ns, staleness=0.3), Server(url, ns, staleness=0.3)
    try:
        seen = _alters_seen(one, two, 4)
        print(f"seen after (ms): {sorted(round(s * 1000) for s in seen)}")
        assert max(seen) < 0.3 + 0.7, seen  # the bound, and a request's time
    finally:
        one.close()
        two.close()


ORDERED: dict[str, Any] = {
    "name": "tasks",
    "attrs": {
        "id": {"type": "uuid"},
        "zeta": {"type": "str"},
        "alpha": {"type": "int", "optional": True},
        "mid": {"type": "bool", "default": False},
    },
}


def _problem_is_the_users(r: httpx.Response, field: str) -> None:
    assert r.status_code == 422, r.text
    assert r.json()["field"] == field and "__g" not in r.text, r.text


def test_http_keeps_the_users_names_and_declared_order(tmp_path: Path) -> None:
    """Over HTTP too, after a destructive migrate moved the data to a new generation
    (``tasks__g1`` inside): problems name ``tasks`` and the user's attributes, and the
    definition, its JSON Schema and OpenAPI list attributes in the declared order."""
    url, ns = f"sqlite:///{tmp_path / 'names.db'}", "o" + uuid.uuid4().hex[:8]
    server = Server(url, ns, staleness=0.2)
    try:
        c = server.client
        assert c.post("/api/_schemas", json=ORDERED).status_code == 201
        key = c.post("/api/tasks", json={"zeta": "z", "alpha": 1}).json()["id"]
        db = persisty.connect(url, namespace=ns)
        cat = persisty.dynamic.catalog(db)
        narrower = {**ORDERED, "attrs": {k: v for k, v in ORDERED["attrs"].items() if k != "mid"}}
        cat.migrate("tasks", narrower, if_match=etag(cat.get("tasks")))
        assert cat.get("tasks").spec["attrs"] and "__g" not in cat.store("tasks").meta.name
        _wait_for(lambda: c.get("/api/_schemas/tasks").json()["version"] > 1, 5)

        _problem_is_the_users(c.post("/api/tasks", json={"zeta": 5}), "zeta")
        _problem_is_the_users(c.post("/api/tasks", json={"alpha": 2}), "zeta")
        _problem_is_the_users(c.patch(f"/api/tasks/{key}", json={"alpha": "many"}), "alpha")
        _problem_is_the_users(c.get("/api/tasks", params={"nope": "1"}), "nope")
        assert c.get(f"/api/tasks/{key}").json()["zeta"] == "z"  # the copy is served

        shown = c.get("/api/_schemas/tasks").json()
        declared = ["id", "zeta", "alpha"]
        assert list(shown["spec"]["attrs"]) == declared
        assert list(shown["json_schema"]["properties"]) == declared
        schemas = c.get("/api/openapi.json").json()["components"]["schemas"]
        orders = {
            n: list(s["properties"])
            for n, s in schemas.items()
            if "zeta" in s.get("properties", {})
        }
        assert set(orders) >= {"Tasks", "TasksCreate", "TasksPatch"}, orders
        for order in orders.values():  # the patch body has no key: the rest, in order
            assert order == [a for a in declared if a in order], orders
        db.close()
    finally:
        server.close()
