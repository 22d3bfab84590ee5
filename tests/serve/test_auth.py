"""Bearer JWT auth (HS256 and RS256), the demo login, and policies through the
access-control layer: anonymous only where allowed, owners see only their own items."""

from __future__ import annotations

import datetime as dt
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.testclient import TestClient
from tests.serve.serve_models import Note, Page

import persisty.aio
from persisty.errors import ValidationError
from persisty.layers import Policy
from persisty.serve import DemoAuthenticator, JWTAuth, app

AUTH = JWTAuth(secret="test-secret-which-is-long-enough-for-hs256")
POLICIES = {
    Note: Policy.owner("owner"),
    Page: Policy.scoped({"anonymous": Policy.read_only(), "user": Policy.allow_all()}),
}


def bearer(
    subject: str, scopes: tuple[str, ...] = ("user",), auth: JWTAuth = AUTH
) -> dict[str, str]:
    return {"Authorization": "Bearer " + auth.issue(subject, scopes)}


@pytest.fixture
def client() -> Any:
    asgi = app(
        persisty.aio.connect("memory://"),
        [Note, Page],
        auth=AUTH,
        policies=POLICIES,
        anonymous=[Page],
        login=DemoAuthenticator({"ann": ("pw-ann", ["user"])}),
    )
    with TestClient(asgi) as c:
        yield c


def test_credentials_required_where_not_anonymous(client: Any) -> None:
    r = client.get("/api/note")
    assert r.status_code == 401 and r.json()["code"] == "unauthorized"
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert client.post("/api/note", json={"title": "x"}).status_code == 401
    assert client.get("/api/note", headers={"Authorization": "Basic abc"}).status_code == 401
    assert client.get("/api/note", headers={"Authorization": "Bearer nonsense"}).status_code == 401
    other = JWTAuth(secret="another-secret-which-is-long-enough-too")
    assert client.get("/api/note", headers=bearer("ann", auth=other)).status_code == 401
    expired = AUTH.issue("ann", ["user"], expires_in=dt.timedelta(seconds=-60))
    r = client.get("/api/note", headers={"Authorization": f"Bearer {expired}"})
    assert r.status_code == 401 and "expired" in r.json()["message"]
    no_exp = jwt.encode({"sub": "ann"}, AUTH.secret, algorithm="HS256")  # type: ignore[arg-type]
    assert client.get("/api/note", headers={"Authorization": f"Bearer {no_exp}"}).status_code == 401
    anon = AUTH.issue("anonymous", ["user"])
    assert client.get("/api/note", headers={"Authorization": f"Bearer {anon}"}).status_code == 401


def test_owner_policy(client: Any) -> None:
    ann, bob = bearer("ann"), bearer("bob")
    r = client.post("/api/note", json={"owner": "bob", "title": "mine"}, headers=ann)
    assert r.status_code == 403 and r.json()["field"] == "owner"  # not someone else's
    r = client.post("/api/note", json={"title": "mine"}, headers=ann)
    assert r.status_code == 201 and r.json()["owner"] == "ann"  # filled in by the policy
    loc = r.headers["location"]
    assert client.get(loc, headers=ann).status_code == 200
    assert client.get(loc, headers=bob).status_code == 404
    assert client.patch(loc, json={"title": "x"}, headers=bob).status_code == 404
    assert client.delete(loc, headers=bob).status_code == 404
    assert client.get("/api/note", headers=bob).json()["items"] == []
    assert client.get("/api/note/_count", headers=bob).json() == {"count": 0}
    assert client.get("/api/note/_count", headers=ann).json() == {"count": 1}
    key = loc.rsplit("/", 1)[1]
    assert client.post("/api/note/_batch/read", json={"keys": [key]}, headers=bob).json() == {
        "items": [None]
    }
    r = client.patch(loc, json={"owner": "bob"}, headers=ann)
    assert r.status_code in (403, 404)
    assert client.get(loc, headers=ann).json()["owner"] == "ann"
    assert client.delete(loc, headers=ann).status_code == 204


def test_anonymous_only_where_the_policy_allows(client: Any) -> None:
    assert client.get("/api/page").status_code == 200
    r = client.post("/api/page", json={"owner": "x", "slug": "y"})
    assert r.status_code == 401, r.text
    r = client.post("/api/page", json={"owner": "x", "slug": "y"}, headers=bearer("ann"))
    assert r.status_code == 201
    assert client.get("/api/page/x:y").status_code == 200
    assert client.patch("/api/page/x:y", json={"body": "b"}).status_code == 401
    r = client.patch("/api/page/x:y", json={"body": "b"}, headers=bearer("eve", ("guest",)))
    assert r.status_code in (403, 404)


def test_login(client: Any) -> None:
    r = client.post("/api/_login", json={"username": "ann", "password": "nope"})
    assert r.status_code == 401
    assert client.post("/api/_login", json={"username": "ann"}).status_code == 422
    r = client.post("/api/_login", json={"username": "ann", "password": "pw-ann"})
    assert r.status_code == 200 and r.json()["token_type"] == "bearer"
    headers = {"Authorization": "Bearer " + r.json()["access_token"]}
    assert (
        client.post("/api/note", json={"title": "t", "owner": "ann"}, headers=headers).status_code
        == 201
    )


def test_no_login_route_without_a_demo_authenticator() -> None:
    with TestClient(app(persisty.aio.connect("memory://"), [Note], auth=AUTH)) as c:
        assert c.post("/api/_login", json={"username": "a", "password": "b"}).status_code in (
            404,
            405,
        )
    with pytest.raises(ValidationError):
        app(persisty.aio.connect("memory://"), [Note], login=DemoAuthenticator({}))


def test_rs256_with_a_public_key() -> None:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    auth = JWTAuth(public_key=pem, audience="persisty-tests")
    now = dt.datetime.now(dt.UTC)
    token = jwt.encode(
        {
            "sub": "ann",
            "scope": "user",
            "exp": now + dt.timedelta(minutes=5),
            "aud": "persisty-tests",
        },
        private,
        algorithm="RS256",
    )
    wrong_aud = jwt.encode(
        {"sub": "ann", "exp": now + dt.timedelta(minutes=5), "aud": "x"}, private, algorithm="RS256"
    )
    hs = jwt.encode(
        {"sub": "ann", "exp": now + dt.timedelta(minutes=5), "aud": "persisty-tests"},
        "secret-secret-secret-secret-secret",
        algorithm="HS256",
    )
    asgi = app(
        persisty.aio.connect("memory://"), [Note], auth=auth, policies={Note: Policy.owner("owner")}
    )
    with TestClient(asgi) as c:
        r = c.post(
            "/api/note",
            json={"owner": "ann", "title": "rs"},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert r.status_code == 201
        for bad in (wrong_aud, hs):
            assert c.get("/api/note", headers={"Authorization": f"Bearer {bad}"}).status_code == 401
    with pytest.raises(ValidationError):
        auth.issue("ann")
    with pytest.raises(ValidationError):
        JWTAuth()


def test_graphql_checks_anonymous_access_per_store(client: Any) -> None:
    client.post("/api/note", json={"owner": "ann", "title": "secret"}, headers=bearer("ann"))
    r = client.post("/graphql", json={"query": "{ pageCount noteCount }"})
    body = r.json()
    assert body["data"] is None or body["data"].get("noteCount") is None
    assert body["errors"][0]["extensions"]["code"] == "unauthorized"
    r = client.post("/graphql", json={"query": "{ pageCount }"})
    assert r.json() == {"data": {"pageCount": 0}}
    r = client.post("/graphql", json={"query": "{ noteCount }"}, headers=bearer("ann"))
    assert r.json() == {"data": {"noteCount": 1}}
    r = client.post("/graphql", json={"query": "{ noteCount }"}, headers=bearer("bob"))
    assert r.json() == {"data": {"noteCount": 0}}
