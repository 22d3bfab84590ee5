"""Regression tests over HTTP for issue 10's findings 3, 4, 7, 8 and 9 and issue 11's items 3,
8 and 9: tenant-bound page keys (SQLite, PostgreSQL), page keys without values in clear,
tenant- and principal-separated Redis caches, body size and nesting limits, tokens without
scopes, sync databases refused, owners filled in, anonymous stores read-only."""

from __future__ import annotations

import base64
import uuid
from typing import Any

import msgspec
import pytest
from starlette.testclient import TestClient
from tests.conftest import POSTGRES_URL, REDIS_URL
from tests.serve.serve_models import Note, Page

import persisty
import persisty.aio
from persisty.errors import ValidationError
from persisty.layers import AsyncMemoryCache, CachedStore, Policy, Principal, cached, secured
from persisty.serve import JWTAuth, Limits, app
from persisty.store import AsyncDatabase, AsyncStore

AUTH = JWTAuth(secret="security-tests-secret-0123456789abcdef")


def bearer(sub: str, scopes: list[str] | None = None) -> dict[str, str]:
    return {"Authorization": "Bearer " + AUTH.issue(sub, scopes or ["user"])}


def _ns() -> str:
    return "t" + uuid.uuid4().hex[:10]


# ---- finding 8: page keys are bound to the namespace; finding 2: no values in clear -----


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_page_keys_do_not_cross_tenants(engine: str, tmp_path: Any) -> None:
    url = f"sqlite:///{tmp_path}/shared.db" if engine == "sqlite" else POSTGRES_URL
    one, two = (persisty.aio.connect(url, namespace=_ns()) for _ in range(2))
    with TestClient(app(one, [Page])) as a, TestClient(app(two, [Page])) as b:
        for c in (a, b):
            for slug in ("s1", "s2", "secret-slug-xyz"):
                assert (
                    c.post(
                        "/api/page", json={"owner": "ann", "slug": slug, "body": "b"}
                    ).status_code
                    == 201
                )
        r = a.get("/api/page", params={"order": "-slug", "limit": 1})
        key = r.json()["next_page_key"]
        assert r.json()["items"][0]["slug"] == "secret-slug-xyz"
        raw = b"".join(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)) for p in key.split("."))
        assert b"secret-slug-xyz" not in raw and b"ann" not in raw  # sealed, not just signed
        assert (
            a.get("/api/page", params={"order": "-slug", "limit": 1, "page_key": key}).status_code
            == 200
        )
        r = b.get("/api/page", params={"order": "-slug", "limit": 1, "page_key": key})
        assert r.status_code == 422 and r.json()["field"] == "page_key"


# ---- findings 3 and 4: caches never cross tenants or principals -------------------------


class CachedDatabase(AsyncDatabase):
    """A database whose stores are read through a shared Redis cache (default prefix)."""

    def __init__(self, inner: AsyncDatabase) -> None:
        super().__init__(inner.url, namespace=inner.namespace)
        self.inner = inner
        self.pages = inner.pages

    def _open(self, meta: Any) -> AsyncStore[Any]:
        return cached(self.inner.store(meta.cls), cache=REDIS_URL, ttl=60)

    async def close(self) -> None:
        for s in self._stores.values():
            await s.close()  # type: ignore[attr-defined]
        await self.inner.close()


def test_redis_cache_separates_namespaces_over_http(tmp_path: Any) -> None:
    url = f"sqlite:///{tmp_path}/tenants.db"
    one = CachedDatabase(persisty.aio.connect(url, namespace=_ns()))
    two = CachedDatabase(persisty.aio.connect(url, namespace=_ns()))
    with TestClient(app(one, [Page])) as a, TestClient(app(two, [Page])) as b:
        assert (
            a.post(
                "/api/page", json={"owner": "ann", "slug": "home", "body": "tenant one"}
            ).status_code
            == 201
        )
        assert a.get("/api/page/ann:home").json()["body"] == "tenant one"  # now cached
        assert b.get("/api/page/ann:home").status_code == 404
        assert b.get("/api/page/_count").json() == {"count": 0}
        assert (
            b.post(
                "/api/page", json={"owner": "ann", "slug": "home", "body": "tenant two"}
            ).status_code
            == 201
        )
        assert b.get("/api/page/ann:home").json()["body"] == "tenant two"
        assert a.get("/api/page/ann:home").json()["body"] == "tenant one"


def test_shared_redis_cache_under_policies_over_http(tmp_path: Any) -> None:
    """The app puts the policy over the store, so one shared cache serves every principal
    and still nobody sees another's items (nor a cached "missing" hides their own)."""
    db = CachedDatabase(persisty.aio.connect(f"sqlite:///{tmp_path}/c.db", namespace=_ns()))
    asgi = app(db, [Note], auth=AUTH, policies={Note: Policy.owner("owner")})
    with TestClient(asgi) as c:
        key = str(uuid.uuid4())
        assert c.get(f"/api/note/{key}", headers=bearer("ann")).status_code == 404  # cached
        r = c.post("/api/note", json={"id": key, "title": "bob's"}, headers=bearer("bob"))
        assert r.status_code == 201
        assert c.get(f"/api/note/{key}", headers=bearer("bob")).status_code == 200
        assert c.get(f"/api/note/{key}", headers=bearer("ann")).status_code == 404
        c.post("/api/note", json={"title": "ann's private"}, headers=bearer("ann"))
        for who, title in (("ann", "ann's private"), ("bob", "bob's")):
            r = c.get("/api/note", headers=bearer(who))
            assert [n["title"] for n in r.json()["items"]] == [title]
            assert c.get("/api/note/_count", headers=bearer(who)).json() == {"count": 1}


def test_redis_cache_over_secured_never_mixes_principals() -> None:
    db = persisty.connect("memory://", namespace=_ns())
    raw = db.store(Note)
    policy = Policy.owner("owner")
    ann = cached(secured(raw, policy, Principal("ann")), cache=REDIS_URL, ttl=60)
    bob = cached(secured(raw, policy, Principal("bob")), cache=REDIS_URL, ttl=60)
    assert isinstance(ann, CachedStore) and isinstance(bob, CachedStore)
    try:
        bob_key = str(uuid.uuid4())
        assert ann.read(bob_key) is None  # ann's cached "missing" ...
        raw.create(Note(id=uuid.UUID(bob_key), owner="bob", title="bob's"))
        mine = ann.create(Note(id=uuid.uuid4(), owner="ann", title="ann's private"))
        assert [n.title for n in ann.search().items] == ["ann's private"]
        assert [n.title for n in bob.search().items] == ["bob's"]  # ... never bob's
        bob_read = bob.read(bob_key)
        assert bob_read is not None and bob_read.title == "bob's"
        assert bob.read(str(mine.id)) is None and bob.count() == 1
    finally:
        ann.close()
        bob.close()


def test_cache_object_over_secured_is_refused() -> None:
    db = persisty.aio.connect("memory://")
    mine = secured(db.store(Note), Policy.owner("owner"), Principal("ann"))
    with pytest.raises(ValidationError) as e:
        cached(mine, cache=AsyncMemoryCache())
    assert e.value.field == "cache" and "secured(cached(store)" in e.value.message


# ---- finding 7 and nesting: limits on what a request may send ---------------------------


@pytest.fixture
def client() -> Any:
    with TestClient(
        app(
            persisty.aio.connect("memory://"),
            [Note, Page],
            limits=Limits(max_body=4096, max_depth=16),
        )
    ) as c:
        yield c


def test_body_size_limit(client: Any) -> None:
    big = msgspec.json.encode({"owner": "ann", "slug": "x", "body": "b" * 5000})
    r = client.post("/api/page", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413 and r.json()["code"] == "payload_too_large"

    def chunks() -> Any:  # no Content-Length: refused while it streams in
        for _ in range(100):
            yield b" " * 1000

    r = client.post("/api/page", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413
    r = client.post("/graphql", content=b'{"query": "' + b" " * 5000 + b'{ pageCount }"}')
    assert r.status_code == 413
    assert client.post("/api/page", json={"owner": "a", "slug": "b"}).status_code == 201


def test_default_body_limit_is_one_mib() -> None:
    with TestClient(app(persisty.aio.connect("memory://"), [Page])) as c:
        body = b'{"owner": "a", "slug": "b", "body": "' + b"x" * (1 << 20) + b'"}'
        r = c.post("/api/page", content=body, headers={"content-type": "application/json"})
        assert r.status_code == 413
        assert Limits().max_body == 1 << 20


def test_nesting_depth_limit(client: Any) -> None:
    deep: Any = 1
    for _ in range(40):
        deep = [deep]
    r = client.post("/api/page", json={"owner": "a", "slug": "b", "body": deep})
    assert r.status_code == 422
    nested = '{"and": [' * 10 + '{"attr": "slug", "op": "eq", "value": "b"}' + "]}" * 10
    r = client.get("/api/page", params={"filter": nested})
    assert r.status_code == 422 and r.json()["field"] == "filter"
    very = "[" * 3000 + "]" * 3000  # beyond the decoder's own recursion limit
    assert client.get("/api/page", params={"filter": very}).status_code == 422
    r = client.post(
        "/api/page/_batch/edit",
        content=b'{"edits": ' + b"[" * 1500 + b"]" * 1500 + b"}",
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 422
    q = "query($v: [String!]) { pageCount }"
    r = client.post("/graphql", json={"query": q, "variables": {"v": deep}})
    assert r.status_code == 422


def test_limits_are_validated() -> None:
    with pytest.raises(ValidationError):
        Limits(max_body=0)
    with pytest.raises(ValidationError):
        Limits(graphql_timeout=-1)


# ---- finding 9 and issue 11 items 3, 8, 9 ----------------------------------------------


def test_token_without_scope_is_a_principal_without_scopes() -> None:
    import datetime as dt

    import jwt

    asgi = app(
        persisty.aio.connect("memory://"),
        [Note],
        auth=AUTH,
        policies={Note: Policy.scoped({"user": Policy.allow_all(), "": Policy.owner("owner")})},
    )
    assert AUTH.secret is not None
    token = jwt.encode(
        {"sub": "ann", "exp": dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)},
        AUTH.secret,
        algorithm="HS256",
    )
    with TestClient(asgi) as c:
        r = c.get("/api/note", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200 and r.json()["items"] == []  # no scopes: sees nothing
        r = c.post(
            "/api/note",
            json={"title": "x", "owner": "ann"},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert r.status_code == 403


def test_sync_database_is_refused_at_construction() -> None:
    with pytest.raises(TypeError) as e:
        app(persisty.connect("memory://"), [Note])  # type: ignore[arg-type]
    assert "persisty.aio.connect" in str(e.value)


def test_owner_filled_in_when_absent_and_refused_when_different() -> None:
    asgi = app(
        persisty.aio.connect("memory://"), [Note], auth=AUTH, policies={Note: Policy.owner("owner")}
    )
    with TestClient(asgi) as c:
        r = c.post("/api/note", json={"title": "mine"}, headers=bearer("ann"))
        assert r.status_code == 201 and r.json()["owner"] == "ann"
        r = c.post("/api/note", json={"title": "x", "owner": "ann"}, headers=bearer("ann"))
        assert r.status_code == 201
        r = c.post("/api/note", json={"title": "x", "owner": "bob"}, headers=bearer("ann"))
        assert r.status_code == 403 and r.json()["field"] == "owner"
        r = c.post(
            "/api/note/_batch/edit",
            json={
                "edits": [
                    {"op": "create", "item": {"title": "b1"}},
                    {"op": "create", "item": {"title": "b2", "owner": "bob"}},
                ],
                "atomic": False,
            },
            headers=bearer("ann"),
        )
        assert [x["code"] for x in r.json()["results"]] == [None, "forbidden"]
        assert c.get("/api/note/_count", headers=bearer("bob")).json() == {"count": 0}


def test_anonymous_store_without_policy_is_read_only() -> None:
    asgi = app(
        persisty.aio.connect("memory://"),
        [Page, Note],
        auth=AUTH,
        anonymous=[Page],
        policies={Note: Policy.owner("owner")},
    )
    with TestClient(asgi) as c:
        assert c.post("/api/page", json={"owner": "a", "slug": "b"}).status_code == 401
        assert (
            c.post("/api/page", json={"owner": "a", "slug": "b"}, headers=bearer("ann")).status_code
            == 201
        )
        assert c.get("/api/page").status_code == 200
        assert c.get("/api/page/a:b").status_code == 200
        assert c.patch("/api/page/a:b", json={"body": "x"}).status_code == 401
        assert c.put("/api/page/a:b", json={"body": "x"}).status_code == 401
        assert c.delete("/api/page/a:b").status_code == 401
        r = c.post("/api/page/_batch/edit", json={"edits": [{"op": "delete", "key": "a:b"}]})
        assert r.status_code in (200, 401)
        if r.status_code == 200:
            assert r.json()["results"][0]["ok"] is False
        r = c.post("/graphql", json={"query": 'mutation { deletePage(key: "a:b") }'})
        assert r.json().get("errors")
        assert c.get("/api/page/a:b").status_code == 200  # still there
    granted = app(
        persisty.aio.connect("memory://"),
        [Page],
        auth=AUTH,
        anonymous=[Page],
        policies={Page: Policy.allow_all()},
    )  # a policy may grant more
    with TestClient(granted) as c:
        assert c.post("/api/page", json={"owner": "a", "slug": "b"}).status_code == 201
