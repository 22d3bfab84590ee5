"""The messenger example: its policies over HTTP, nested GraphQL, and the start script."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from examples.messenger.app import create_app

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def client(tmp_path: Path) -> Any:
    with TestClient(create_app(f"sqlite:///{tmp_path}/messenger.db", demo=True)) as c:
        yield c


def login(client: Any, user: str) -> dict[str, str]:
    r = client.post("/api/_login", json={"username": user, "password": user})
    assert r.status_code == 200
    return {"Authorization": "Bearer " + r.json()["access_token"]}


def test_seeded_and_public_reads(client: Any) -> None:
    r = client.get("/api/channel", params={"order": "title"})
    assert [c["id"] for c in r.json()["items"]] == ["general", "random"]
    assert r.headers["cache-control"] == "public, max-age=60"
    assert client.get("/api/user/ann").json()["name"] == "Ann Smith"
    assert client.get("/api/message").status_code == 401
    assert client.post("/api/channel", json={"id": "x", "title": "X"}).status_code == 401


def test_messages_are_owned(client: Any) -> None:
    ann, bob, root = login(client, "ann"), login(client, "bob"), login(client, "root")
    r = client.post(
        "/api/message", json={"channel_id": "general", "text": "mine", "owner": "bob"}, headers=ann
    )
    assert r.status_code == 403 and r.json()["field"] == "owner"  # posting as someone else
    r = client.post("/api/message", json={"channel_id": "general", "text": "mine"}, headers=ann)
    assert r.status_code == 201 and r.json()["owner"] == "ann"
    loc = r.headers["location"]
    assert client.get(loc, headers=bob).status_code == 200  # signed-in users read all
    assert client.patch(loc, json={"text": "hacked"}, headers=bob).status_code == 403
    assert client.delete(loc, headers=bob).status_code == 403
    r = client.patch(loc, json={"text": "edited"}, headers=ann)
    assert r.status_code == 200 and r.json()["text"] == "edited"
    assert (
        client.post("/api/channel", json={"id": "x", "title": "X"}, headers=ann).status_code == 403
    )
    assert (
        client.post("/api/channel", json={"id": "x", "title": "X"}, headers=root).status_code == 201
    )
    assert client.delete(loc, headers=root).status_code == 204
    r = client.post("/api/message", json={"channel_id": "general", "text": ""}, headers=ann)
    assert r.status_code == 422 and r.json()["field"] == "text"


def test_graphql_relations(client: Any) -> None:
    q = """{ channelSearch(order: ["id"]) { items { id messages { text author { name } } } } }"""
    r = client.post("/graphql", json={"query": q}, headers=login(client, "bob"))
    data = r.json()["data"]["channelSearch"]["items"]
    assert data[0]["id"] == "general"
    assert {m["author"]["name"] for m in data[0]["messages"]} == {"Ann Smith", "Bob Jones"}


def test_run_example_starts_and_serves(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PERSISTY_URL"}
    # the script's default: the embedded SQLite database ./persisty.db (here in tmp_path)
    r = subprocess.run(
        [str(ROOT / "scripts" / "run-example"), "--check"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "/docs" in r.stdout and "/graphql" in r.stdout and "FAIL" not in r.stdout
    assert "sqlite:///persisty.db" in r.stdout


def test_references_and_cascades(client: Any) -> None:
    ann, root = login(client, "ann"), login(client, "root")
    r = client.post("/api/message", json={"channel_id": "nowhere", "text": "x"}, headers=ann)
    assert r.status_code in (404, 409, 422), r.text
    n = client.get("/api/message/_count", params={"channel_id": "random"}, headers=ann).json()
    assert n["count"] == 2
    assert client.delete("/api/channel/random", headers=root).status_code == 204
    n = client.get("/api/message/_count", params={"channel_id": "random"}, headers=ann).json()
    assert n["count"] == 0


def test_refuses_to_start_without_a_secret(tmp_path: Path, monkeypatch: Any) -> None:
    """No hard-coded fallback secret: outside demo mode MESSENGER_SECRET is required."""
    monkeypatch.delenv("MESSENGER_SECRET", raising=False)
    with pytest.raises(SystemExit) as refused:
        create_app(f"sqlite:///{tmp_path}/m.db")
    assert "MESSENGER_SECRET" in str(refused.value)
    monkeypatch.setenv("MESSENGER_SECRET", "short")
    with pytest.raises(SystemExit):
        create_app(f"sqlite:///{tmp_path}/m.db")
    monkeypatch.setenv("MESSENGER_SECRET", "s" * 40)
    with TestClient(create_app(f"sqlite:///{tmp_path}/m.db")) as c:
        assert c.get("/api/channel").status_code == 200
        assert c.post("/api/_login", json={"username": "ann", "password": "ann"}).status_code in (
            404,
            405,
        )  # no demo logins outside demo mode
