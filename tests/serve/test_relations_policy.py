"""Issue 10, finding 5: relation checks and delete rules run under the caller's policy, over
HTTP, on memory, SQLite and PostgreSQL. A hidden target answers exactly like a missing one;
a delete never reaches, counts or changes items outside the caller's rules."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from starlette.testclient import TestClient
from tests.conftest import POSTGRES_URL

import persisty.aio
from persisty import Attr, stored
from persisty.layers import BelongsTo, HasMany, Policy
from persisty.serve import JWTAuth, app

AUTH = JWTAuth(secret="relations-policy-tests-0123456789abcdef")


@stored
class SecFolder:
    id: str = Attr(min_length=1, max_length=40)
    owner: str = ""
    docs = HasMany("SecDoc", "folder_id", on_delete="cascade")
    notes = HasMany("SecNote", "folder_id", on_delete="set_null")
    pins = HasMany("SecPin", "folder_id", on_delete="block")


@stored
class SecDoc:
    id: str = Attr(min_length=1, max_length=40)
    owner: str = ""
    folder_id: str = ""
    folder = BelongsTo(SecFolder, "folder_id")


@stored
class SecNote:
    id: str = Attr(min_length=1, max_length=40)
    owner: str = ""
    folder_id: str | None = None
    folder = BelongsTo(SecFolder, "folder_id")


@stored
class SecPin:
    id: str = Attr(min_length=1, max_length=40)
    owner: str = ""
    folder_id: str = ""
    folder = BelongsTo(SecFolder, "folder_id")


def bearer(sub: str) -> dict[str, str]:
    scopes = ["admin"] if sub == "root" else ["user"]
    return {"Authorization": "Bearer " + AUTH.issue(sub, scopes)}


ANN, BOB, ROOT = bearer("ann"), bearer("bob"), bearer("root")
OWNED = Policy.scoped({"user": Policy.owner("owner"), "admin": Policy.allow_all()})


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def client(request: Any, tmp_path: Any) -> Any:
    url = {
        "memory": "memory://",
        "sqlite": f"sqlite:///{tmp_path}/rel.db",
        "postgresql": POSTGRES_URL,
    }[request.param]
    db = persisty.aio.connect(url, namespace="t" + uuid.uuid4().hex[:10])
    stores = [SecFolder, SecDoc, SecNote, SecPin]
    with TestClient(app(db, stores, auth=AUTH, policies=dict.fromkeys(stores, OWNED))) as c:
        assert c.post("/api/sec_folder", json={"id": "bobs"}, headers=BOB).status_code == 201
        assert c.post("/api/sec_folder", json={"id": "anns"}, headers=ANN).status_code == 201
        yield c


def _shape(r: Any) -> tuple[int, str, str | None, str]:
    body = r.json()
    return r.status_code, body["code"], body["field"], re.sub(r"'[^']*'", "'…'", body["message"])


def test_a_hidden_target_is_a_missing_one(client: Any) -> None:
    hidden = client.post("/api/sec_doc", json={"id": "d1", "folder_id": "bobs"}, headers=ANN)
    missing = client.post("/api/sec_doc", json={"id": "d2", "folder_id": "nowhere"}, headers=ANN)
    assert hidden.status_code == 422 and _shape(hidden) == _shape(missing)
    assert (
        client.post("/api/sec_doc", json={"id": "d3", "folder_id": "anns"}, headers=ANN).status_code
        == 201
    )
    r = client.patch("/api/sec_doc/d3", json={"folder_id": "bobs"}, headers=ANN)
    assert _shape(r) == _shape(
        client.patch("/api/sec_doc/d3", json={"folder_id": "gone"}, headers=ANN)
    )
    r = client.post(
        "/api/sec_doc/_batch/edit",
        headers=ANN,
        json={"edits": [{"op": "create", "item": {"id": "d4", "folder_id": "bobs"}}]},
    )
    assert r.json()["results"][0]["code"] == "validation_error"
    r = client.post(
        "/graphql",
        headers=ANN,
        json={"query": 'mutation { createSecDoc(item: {id: "d5", folder_id: "bobs"}) { id } }'},
    )
    assert r.json()["errors"][0]["extensions"]["code"] == "validation_error"
    assert client.get("/api/sec_doc/_count", headers=ROOT).json() == {"count": 1}


@pytest.mark.parametrize("store", ["sec_doc", "sec_note", "sec_pin"])
def test_a_delete_never_reaches_items_outside_the_rules(client: Any, store: str) -> None:
    # ann's item refers to bob's folder (written by an admin: ann cannot do it herself)
    r = client.post(
        f"/api/{store}", json={"id": "x1", "owner": "ann", "folder_id": "bobs"}, headers=ROOT
    )
    assert r.status_code == 201, r.text
    before = client.get(f"/api/{store}/x1", headers=ANN).json()
    r = client.delete("/api/sec_folder/bobs", headers=BOB)
    assert r.status_code == 409 and r.json()["code"] == "conflict"
    assert not re.search(r"\d", r.json()["message"])  # refused without counts
    assert client.get(f"/api/{store}/x1", headers=ANN).json() == before  # untouched
    assert client.get("/api/sec_folder/bobs", headers=BOB).status_code == 200
    r = client.post(
        "/api/sec_folder/_batch/edit",
        headers=BOB,
        json={"edits": [{"op": "delete", "key": "bobs"}]},
    )
    assert r.json()["results"][0]["ok"] is False
    r = client.post(
        "/graphql", headers=BOB, json={"query": 'mutation { deleteSecFolder(key: "bobs") }'}
    )
    assert r.json()["errors"][0]["extensions"]["code"] == "conflict"
    assert client.get(f"/api/{store}/x1", headers=ANN).json() == before
    # the admin sees everything, so the rule applies
    assert client.delete("/api/sec_folder/bobs", headers=ROOT).status_code in (204, 409)


def test_own_references_follow_the_rules(client: Any) -> None:
    for store in ("sec_doc", "sec_note"):
        assert (
            client.post(
                f"/api/{store}", json={"id": "m1", "folder_id": "anns"}, headers=ANN
            ).status_code
            == 201
        )
    assert client.delete("/api/sec_folder/anns", headers=ANN).status_code == 204
    assert client.get("/api/sec_doc/m1", headers=ANN).status_code == 404  # cascaded
    assert client.get("/api/sec_note/m1", headers=ANN).json()["folder_id"] is None  # nulled
    assert client.post("/api/sec_folder", json={"id": "anns"}, headers=ANN).status_code == 201
    assert (
        client.post("/api/sec_pin", json={"id": "p1", "folder_id": "anns"}, headers=ANN).status_code
        == 201
    )
    r = client.delete("/api/sec_folder/anns", headers=ANN)
    assert r.status_code == 409  # blocked by her own pin, which she may see and count
