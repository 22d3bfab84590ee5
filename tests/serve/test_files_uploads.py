"""Upload grants over HTTP on every file backend: the caller's right is checked before any
URL exists (a read-only principal, an anonymous caller and another owner get no ``url``,
``fields`` or ``parts``), hosted form and part targets, status, completion and abort; S3
grants are presigned and the bytes go to the bucket (moto_server)."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient
from tests.serve._files_backends import BACKENDS, open_files

import persisty.aio
from persisty.files import Limits
from persisty.layers import Policy
from persisty.serve import JWTAuth, app

AUTH = JWTAuth(secret="a test secret that is long enough for HS256 ok")
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40


def bearer(sub: str, scopes: tuple[str, ...] = ("user",)) -> dict[str, str]:
    return {"Authorization": f"Bearer {AUTH.issue(sub, list(scopes))}"}


@pytest.fixture(params=BACKENDS)
def env(request: Any) -> Iterator[tuple[TestClient, str]]:
    files = open_files(
        request.param, "u" + uuid.uuid4().hex[:8], limits=Limits(max_size=20_000_000)
    )
    policy = Policy.scoped({"user": Policy.owner("owner"), "viewer": Policy.read_only()})
    asgi = app(
        persisty.aio.connect("memory://"),
        [],
        auth=AUTH,
        files={"media": files},
        file_policies={"media": policy},
    )
    with TestClient(asgi) as c:
        yield c, str(request.param)


def _post_form(c: TestClient, grant: dict[str, Any], data: bytes) -> int:
    files = {
        "file": (
            "upload.bin",
            data,
            grant["fields"].get("Content-Type", "application/octet-stream"),
        )
    }
    if grant["url"].startswith("http"):  # S3: straight to the bucket
        r = httpx.post(grant["url"], data=grant["fields"], files=files)
    else:
        r = c.post(grant["url"], data=grant["fields"], files=files)
    return r.status_code


def test_no_rights_no_url(env: tuple[TestClient, str]) -> None:
    c, _ = env
    body = {"key": "a/pic.png", "size": len(PNG), "content_type": "image/png"}
    for headers, status in (
        ({}, 401),
        (bearer("val", ("viewer",)), 403),
        (bearer("eve", ("nobody",)), 403),
    ):
        r = c.post("/api/_files/media/_uploads", json=body, headers=headers)
        assert r.status_code == status
        assert not {"url", "fields", "parts"} & set(r.json())
    # another owner's file: as if it did not exist, and no URL
    assert (
        c.put("/api/_files/media/a/pic.png", content=PNG, headers=bearer("ann")).status_code == 201
    )
    r = c.post("/api/_files/media/_uploads", json=body, headers=bearer("bob"))
    assert r.status_code == 404 and not {"url", "fields", "parts"} & set(r.json())


def test_form_grant_upload_complete(env: tuple[TestClient, str]) -> None:
    c, _ = env
    ann = bearer("ann")
    sha = hashlib.sha256(PNG).hexdigest()
    r = c.post(
        "/api/_files/media/_uploads",
        json={
            "prefix": "inbox/",
            "size": len(PNG),
            "content_type": "image/png",
            "sha256": sha,
            "filename": "cat.png",
        },
        headers=ann,
    )
    assert r.status_code == 201, r.text
    grant = r.json()
    assert grant["key"].startswith("inbox/") and grant["url"] and grant["fields"]
    # nothing visible before completion
    assert c.get(f"/api/_files/media/{grant['key']}", headers=ann).status_code == 404
    assert _post_form(c, grant, PNG) in (200, 201, 204)
    upload = f"/api/_files/media/_uploads/{grant['upload_id']}"
    status = c.get(upload, headers=ann).json()
    assert status["state"] == "pending" and status["size"] == len(PNG)
    assert status["bytes_received"] == len(PNG)  # resumable: the client can tell
    assert c.get(upload, headers=bearer("bob")).status_code == 404
    assert c.post(upload + "/_complete", headers=bearer("bob")).status_code == 404
    done = c.post(grant["complete_url"], headers=ann)
    assert done.status_code == 201, done.text
    assert done.json()["etag"] == sha and done.json()["owner"] == "ann"
    assert c.get(f"/api/_files/media/{grant['key']}", headers=ann).content == PNG
    assert c.post(grant["complete_url"], headers=ann).json()["etag"] == sha  # retry


def test_wrong_type_or_short_upload_is_refused_and_invisible(env: tuple[TestClient, str]) -> None:
    c, _ = env
    ann = bearer("ann")
    r = c.post(
        "/api/_files/media/_uploads",
        json={"key": "x.png", "size": len(PNG), "content_type": "image/png"},
        headers=ann,
    ).json()
    assert _post_form(c, r, b"not a png at all" + bytes(len(PNG) - 16)) in (200, 201, 204)
    done = c.post(r["complete_url"], headers=ann)
    assert done.status_code == 422 and done.json()["code"] == "content_type_mismatch"
    assert c.get("/api/_files/media/x.png", headers=ann).status_code == 404
    r = c.post(
        "/api/_files/media/_uploads",
        json={"key": "y.png", "size": len(PNG), "content_type": "image/png"},
        headers=ann,
    ).json()
    done = c.post(r["complete_url"], headers=ann)
    assert done.status_code == 422 and done.json()["code"] == "upload_incomplete"
    assert c.delete(f"/api/_files/media/_uploads/{r['upload_id']}", headers=ann).status_code == 204
    assert c.get(f"/api/_files/media/_uploads/{r['upload_id']}", headers=ann).status_code == 404


def test_multipart_grant(env: tuple[TestClient, str]) -> None:
    c, backend = env
    ann = bearer("ann")
    part = 5 * 1024 * 1024 if backend == "s3" else 64 * 1024
    data = bytes(range(256)) * ((2 * part + 1000) // 256)
    r = c.post(
        "/api/_files/media/_uploads",
        json={
            "key": "big.bin",
            "size": len(data),
            "content_type": "application/octet-stream",
            "part_size": part,
        },
        headers=ann,
    )
    assert r.status_code == 201, r.text
    grant = r.json()
    assert len(grant["parts"]) == 3 and grant["method"] == "PUT"
    parts = []
    for p in grant["parts"]:
        chunk = data[(p["part_number"] - 1) * part : p["part_number"] * part]
        put = (
            httpx.put(p["url"], content=chunk)
            if p["url"].startswith("http")
            else c.put(p["url"], content=chunk)
        )
        assert put.status_code == 200, put.text
        parts.append({"part_number": p["part_number"], "etag": put.headers["etag"]})
        if p["part_number"] == 1:
            status = c.get(f"/api/_files/media/_uploads/{grant['upload_id']}", headers=ann).json()
            assert status["parts"] == [{"part_number": 1, "size": part}]
    done = c.post(grant["complete_url"], json={"parts": parts}, headers=ann)
    assert done.status_code == 201, done.text
    assert (
        c.get("/api/_files/media/big.bin", headers={**ann, "Range": "bytes=-10"}).content
        == data[-10:]
    )
