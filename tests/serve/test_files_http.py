"""The file routes over HTTP on every file backend: PUT (limits, Content-Digest,
preconditions), DELETE, list/count/copy, signed URLs (an injected clock; tampering), and
policies: a read-only principal, an anonymous caller and another owner get no URL."""

from __future__ import annotations

import base64
import hashlib
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from starlette.testclient import TestClient
from tests.serve._files_backends import BACKENDS, open_files

import persisty.aio
from persisty.files import Limits
from persisty.layers import Policy
from persisty.serve import JWTAuth, app

SECRET = "a test secret that is long enough for HS256 ok"
AUTH = JWTAuth(secret=SECRET)
PNG = b"\x89PNG\r\n\x1a\n" + bytes(2000)


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2030, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def bearer(sub: str, scopes: tuple[str, ...] = ("user",)) -> dict[str, str]:
    return {"Authorization": f"Bearer {AUTH.issue(sub, list(scopes))}"}


@pytest.fixture(params=BACKENDS)
def backend(request: Any) -> str:
    return str(request.param)


@pytest.fixture
def env(backend: str) -> Iterator[tuple[TestClient, Clock]]:
    clock = Clock()
    files = open_files(
        backend, "h" + uuid.uuid4().hex[:8], clock=clock, limits=Limits(max_size=5_000_000)
    )
    policy = Policy.scoped({"user": Policy.owner("owner"), "viewer": Policy.read_only()})
    asgi = app(
        persisty.aio.connect("memory://"),
        [],
        auth=AUTH,
        files={"docs": files},
        file_policies={"docs": policy},
    )
    with TestClient(asgi) as c:
        yield c, clock


def test_put_get_replace_delete(env: tuple[TestClient, Clock]) -> None:
    c, _ = env
    ann = bearer("ann")
    r = c.put(
        "/api/_files/docs/a/hello.txt",
        content=b"hello world",
        headers={**ann, "Content-Type": "text/plain"},
    )
    assert r.status_code == 201, r.text
    body = r.json()
    sha = hashlib.sha256(b"hello world").hexdigest()
    assert r.headers["etag"] == f'"{sha}"' and body["etag"] == sha
    assert body["key"] == "a/hello.txt" and body["size"] == 11 and body["owner"] == "ann"
    assert (
        "blob" not in body
        and "id" not in body
        and body["url"].startswith("/api/_files/docs/a/hello.txt?exp=")
    )
    got = c.get("/api/_files/docs/a/hello.txt", headers=ann)
    assert got.content == b"hello world" and got.headers["content-type"] == "text/plain"
    # text/plain is inline-safe: inline by default, sandboxed; attachment when asked
    assert got.headers["content-disposition"].startswith("inline")
    assert got.headers["content-security-policy"] == "sandbox"
    forced = c.get("/api/_files/docs/a/hello.txt?disposition=attachment", headers=ann)
    assert forced.headers["content-disposition"].startswith("attachment")
    assert "content-security-policy" not in forced.headers
    # replace: 200, If-Match checked, If-None-Match: * refused
    r2 = c.put(
        "/api/_files/docs/a/hello.txt", content=b"bye", headers={**ann, "If-Match": f'"{sha}"'}
    )
    assert r2.status_code == 200 and r2.json()["size"] == 3
    assert (
        c.put(
            "/api/_files/docs/a/hello.txt", content=b"x", headers={**ann, "If-Match": f'"{sha}"'}
        ).status_code
        == 412
    )
    assert (
        c.put(
            "/api/_files/docs/a/hello.txt", content=b"x", headers={**ann, "If-None-Match": "*"}
        ).status_code
        == 412
    )
    assert (
        c.put(
            "/api/_files/docs/a/new.txt", content=b"x", headers={**ann, "If-Match": "*"}
        ).status_code
        == 412
    )
    assert c.get("/api/_files/docs/a/hello.txt", headers=ann).content == b"bye"
    # delete with a wrong If-Match, then for real
    assert (
        c.delete("/api/_files/docs/a/hello.txt", headers={**ann, "If-Match": '"nope"'}).status_code
        == 412
    )
    assert c.delete("/api/_files/docs/a/hello.txt", headers=ann).status_code == 204
    assert c.get("/api/_files/docs/a/hello.txt", headers=ann).status_code == 404
    assert c.delete("/api/_files/docs/a/hello.txt", headers=ann).status_code == 404


def test_html_svg_xml_are_never_inline(env: tuple[TestClient, Clock]) -> None:
    c, _ = env
    ann = bearer("ann")
    for key, ctype in (
        ("x.html", "text/html"),
        ("x.svg", "image/svg+xml"),
        ("x.xml", "application/xml"),
    ):
        c.put(f"/api/_files/docs/{key}", content=b"<x/>", headers={**ann, "Content-Type": ctype})
        for asked in ("", "?disposition=inline"):
            r = c.get(f"/api/_files/docs/{key}{asked}", headers=ann)
            assert r.headers["content-disposition"].startswith("attachment"), key
            assert r.headers["x-content-type-options"] == "nosniff"
    c.put("/api/_files/docs/résumé.png", content=PNG, headers=ann)
    r = c.get("/api/_files/docs/résumé.png", headers=ann)
    assert r.headers["content-disposition"] == (
        "inline; filename=\"r_sum_.png\"; filename*=UTF-8''r%C3%A9sum%C3%A9.png"
    )


def test_content_digest(env: tuple[TestClient, Clock]) -> None:
    c, _ = env
    ann = bearer("ann")
    good = base64.b64encode(hashlib.sha256(b"data").digest()).decode()
    bad = base64.b64encode(hashlib.sha256(b"other").digest()).decode()
    r = c.put(
        "/api/_files/docs/d.bin",
        content=b"data",
        headers={**ann, "Content-Digest": f"sha-256=:{bad}:"},
    )
    assert r.status_code == 400 and r.json()["code"] == "digest_mismatch"
    assert c.get("/api/_files/docs/d.bin", headers=ann).status_code == 404
    r = c.put(
        "/api/_files/docs/d.bin",
        content=b"data",
        headers={**ann, "Content-Digest": f"sha-256=:{good}:"},
    )
    assert r.status_code == 201
    assert (
        c.put(
            "/api/_files/docs/e.bin", content=b"data", headers={**ann, "Content-Digest": "md5=:x:"}
        ).status_code
        == 422
    )


def test_a_5_mb_store_refuses_5_000_001_bytes_before_reading_them(
    env: tuple[TestClient, Clock],
) -> None:
    c, _ = env
    ann = bearer("ann")
    read = 0

    def body() -> Iterator[bytes]:
        nonlocal read
        for _ in range(5):
            read += 1_000_000
            yield bytes(1_000_000)
        read += 1
        yield b"!"

    # declared too large: 413 before the body is read
    r = c.put(
        "/api/_files/docs/big.bin", content=body(), headers={**ann, "Content-Length": "5000001"}
    )
    assert r.status_code == 413 and "grant" in r.json()["message"]
    assert read <= 1_000_000  # the client had at most its first piece buffered
    # chunked (no length): refused while streaming, nothing visible
    read = 0
    r = c.put("/api/_files/docs/big.bin", content=body(), headers=ann)
    assert r.status_code == 413
    assert c.get("/api/_files/docs/big.bin", headers=ann).status_code == 404
    assert c.get("/api/_files/docs", headers=ann).json()["items"] == []
    r = c.put("/api/_files/docs/ok.bin", content=bytes(5_000_000), headers=ann)
    assert r.status_code == 201 and r.json()["size"] == 5_000_000


def test_list_count_copy_and_owners(env: tuple[TestClient, Clock]) -> None:
    c, _ = env
    ann, bob = bearer("ann"), bearer("bob")
    for i in range(5):
        assert (
            c.put(f"/api/_files/docs/n/{i}.txt", content=b"x" * (i + 1), headers=ann).status_code
            == 201
        )
    c.put("/api/_files/docs/n/bob.txt", content=b"bob", headers=bob)
    page = c.get("/api/_files/docs", params={"prefix": "n/", "limit": "2"}, headers=ann).json()
    assert [i["key"] for i in page["items"]] == ["n/0.txt", "n/1.txt"]
    keys = [i["key"] for i in page["items"]]
    while page["next_page_key"]:
        page = c.get(
            "/api/_files/docs",
            params={"prefix": "n/", "limit": "2", "page_key": page["next_page_key"]},
            headers=ann,
        ).json()
        keys += [i["key"] for i in page["items"]]
    assert keys == [f"n/{i}.txt" for i in range(5)]  # never bob's
    assert c.get("/api/_files/docs/_count", headers=ann).json() == {"count": 5}
    assert c.get("/api/_files/docs/_count", headers=bob).json() == {"count": 1}
    big = c.get("/api/_files/docs", params={"size__gt": "3", "order": "-size"}, headers=ann).json()
    assert [i["key"] for i in big["items"]] == ["n/4.txt", "n/3.txt"]
    assert c.get("/api/_files/docs", params={"blob": "x"}, headers=ann).status_code == 422
    # bob cannot read, replace, delete or copy ann's file: it does not exist for him
    assert c.get("/api/_files/docs/n/0.txt", headers=bob).status_code == 404
    assert c.put("/api/_files/docs/n/0.txt", content=b"mine", headers=bob).status_code == 404
    assert c.delete("/api/_files/docs/n/0.txt", headers=bob).status_code == 404
    assert (
        c.post(
            "/api/_files/docs/_copy", json={"from": "n/0.txt", "to": "b/0.txt"}, headers=bob
        ).status_code
        == 404
    )
    r = c.post("/api/_files/docs/_copy", json={"from": "n/0.txt", "to": "m/0.txt"}, headers=ann)
    assert r.status_code == 201 and r.json()["key"] == "m/0.txt"
    assert c.get("/api/_files/docs/m/0.txt", headers=ann).content == b"x"
    assert c.get("/api/_files/docs/n/0.txt", headers=ann).content == b"x"
    # anonymous: 401 everywhere
    assert c.get("/api/_files/docs").status_code == 401
    assert c.get("/api/_files/docs/n/0.txt").status_code == 401
    assert c.put("/api/_files/docs/z.txt", content=b"z").status_code == 401
    # a read-only principal reads but does not write
    viewer = bearer("val", ("viewer",))
    assert c.get("/api/_files/docs/n/0.txt", headers=viewer).content == b"x"
    assert c.put("/api/_files/docs/v.txt", content=b"v", headers=viewer).status_code == 403
    assert c.delete("/api/_files/docs/n/1.txt", headers=viewer).status_code == 403


def _tamper(url: str, name: str) -> str:
    path, _, query = url.partition("?")
    params = {k: v[0] for k, v in parse_qs(query).items()}
    if name == "key":
        path = path.replace("s.txt", "t.txt")
    elif name == "exp":
        params["exp"] = str(int(params["exp"]) + 3600)
    else:
        sig = params[name]
        params[name] = ("A" if sig[0] != "A" else "B") + sig[1:]
    return path + "?" + "&".join(f"{k}={v}" for k, v in params.items())


def test_signed_urls_expire_and_resist_tampering(env: tuple[TestClient, Clock]) -> None:
    c, clock = env
    ann = bearer("ann")
    url = c.put("/api/_files/docs/s.txt", content=b"signed", headers=ann).json()["url"]
    c.put("/api/_files/docs/t.txt", content=b"other", headers=ann)
    assert c.get(url).content == b"signed"  # no bearer needed
    for name in ("sig", "key", "exp", "v"):
        bad = c.get(_tamper(url, name))
        assert bad.status_code == 403, name
        assert bad.json()["code"] == "invalid_signature"
    assert c.get(url + "&disposition=attachment").status_code == 403  # it is signed
    assert c.get(url.split("&sig=")[0]).status_code == 403
    exp = int(parse_qs(urlsplit(url).query)["exp"][0])
    clock.now = datetime.fromtimestamp(exp, UTC) - timedelta(seconds=1)
    assert c.get(url).status_code == 200
    clock.now = datetime.fromtimestamp(exp, UTC) + timedelta(seconds=1)
    expired = c.get(url)
    assert expired.status_code == 403 and expired.json()["field"] == "exp"
    clock.now = datetime(2030, 1, 1, tzinfo=UTC)
    # after the file changes or is deleted: 404
    c.put("/api/_files/docs/s.txt", content=b"changed", headers=ann)
    assert c.get(url).status_code == 404
    url2 = c.get("/api/_files/docs", headers=ann).json()["items"][0]["url"]
    assert c.get(url2).status_code == 200
    c.delete("/api/_files/docs/s.txt", headers=ann)
    assert c.get(url2).status_code == 404


def test_cors_lets_a_page_read_ranges_and_etags() -> None:
    files = open_files("memory", "c" + uuid.uuid4().hex[:8])
    asgi = app(
        persisty.aio.connect("memory://"), [], files={"docs": files}, cors=["https://site.example"]
    )
    with TestClient(asgi) as c:
        c.put("/api/_files/docs/a.bin", content=bytes(100))
        pre = c.options(
            "/api/_files/docs/a.bin",
            headers={
                "Origin": "https://site.example",
                "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": "range, if-range",
            },
        )
        assert pre.status_code == 200
        r = c.get(
            "/api/_files/docs/a.bin",
            headers={"Origin": "https://site.example", "Range": "bytes=0-9"},
        )
        exposed = r.headers["access-control-expose-headers"].lower()
        assert r.status_code == 206 and "content-range" in exposed and "etag" in exposed
