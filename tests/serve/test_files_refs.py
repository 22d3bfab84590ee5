"""``FileRef`` attributes served over REST: writes check the file exists for the caller
with that etag (422 naming the attribute), pages show each reference with a signed URL
from one catalog read (counted), and deleting an item deletes, keeps or blocks on its file."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from starlette.testclient import TestClient
from tests.serve._files_backends import BACKENDS, open_files

import persisty.aio
from persisty import Attr, FileRef, stored
from persisty.layers import Policy
from persisty.serve import JWTAuth, app
from persisty.store import AsyncWrappedStore

AUTH = JWTAuth(secret="a test secret that is long enough for HS256 ok")


@stored
class RefNote:
    id: str
    owner: str = ""
    title: str = ""
    attachment: FileRef | None = Attr(files="docs", on_delete="delete")
    cover: FileRef | None = Attr(files="pics", on_delete="block")
    extra: FileRef | None = Attr(files="docs", on_delete="keep")


class CountingCatalog(AsyncWrappedStore[Any]):
    reads = 0

    async def read(self, key: str) -> Any:
        CountingCatalog.reads += 1
        return await self.inner.read(key)

    async def read_batch(self, keys: Sequence[str]) -> Any:
        CountingCatalog.reads += 1
        return await self.inner.read_batch(keys)

    async def search(self, *args: Any, **kwargs: Any) -> Any:
        CountingCatalog.reads += 1
        return await self.inner.search(*args, **kwargs)


def bearer(sub: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {AUTH.issue(sub, ['user'])}"}


@pytest.fixture(params=BACKENDS)
def client(request: Any) -> Iterator[TestClient]:
    docs = open_files(request.param, "d" + uuid.uuid4().hex[:8])
    pics = open_files(request.param, "p" + uuid.uuid4().hex[:8])
    docs.catalog = CountingCatalog(docs.catalog)
    db = persisty.aio.connect("memory://", namespace="r" + uuid.uuid4().hex[:8])
    owner = Policy.owner("owner")
    asgi = app(
        db,
        [RefNote],
        auth=AUTH,
        policies={RefNote: owner},
        files={"docs": docs, "pics": pics},
        file_policies={"docs": owner, "pics": owner},
    )
    with TestClient(asgi) as c:
        yield c


def _ref(c: TestClient, store: str, key: str, data: bytes, who: str = "ann") -> dict[str, str]:
    r = c.put(f"/api/_files/{store}/{key}", content=data, headers=bearer(who))
    assert r.status_code == 201, r.text
    return {"key": key, "etag": r.json()["etag"]}


def test_writes_check_the_file_and_its_etag(client: TestClient) -> None:
    ann = bearer("ann")
    ref = _ref(client, "docs", "a.txt", b"hello")
    bobs = _ref(client, "docs", "b.txt", b"bob's", who="bob")
    r = client.post("/api/ref_note", json={"id": "n1", "attachment": ref}, headers=ann)
    assert r.status_code == 201, r.text
    shown = r.json()["attachment"]
    assert shown["key"] == "a.txt" and shown["size"] == 5
    assert shown["content_type"] == "text/plain" and shown["url"].startswith(
        "/api/_files/docs/a.txt?exp="
    )
    assert client.get(shown["url"]).content == b"hello"
    for bad in (
        {"key": "a.txt", "etag": "0" * 64},
        {"key": "none.txt", "etag": ref["etag"]},
        bobs,
        {"key": "../x", "etag": "e"},
    ):
        r = client.post("/api/ref_note", json={"id": "n2", "attachment": bad}, headers=ann)
        assert r.status_code == 422 and r.json()["field"] == "attachment", bad
    r = client.post("/api/ref_note", json={"id": "n2", "attachment": "a.txt"}, headers=ann)
    assert r.status_code == 422 and r.json()["field"] == "attachment"
    r = client.patch("/api/ref_note/n1", json={"extra": {"key": "x", "etag": "y"}}, headers=ann)
    assert r.status_code == 422 and r.json()["field"] == "extra"
    r = client.patch("/api/ref_note/n1", json={"extra": ref}, headers=ann)
    assert r.status_code == 200 and r.json()["extra"]["size"] == 5
    # the file changes: the reference stays, without a URL
    client.put("/api/_files/docs/a.txt", content=b"changed", headers=ann)
    got = client.get("/api/ref_note/n1", headers=ann).json()
    assert got["attachment"]["url"] is None and got["attachment"]["etag"] == ref["etag"]


def test_a_page_of_50_is_signed_from_one_catalog_read(client: TestClient) -> None:
    ann = bearer("ann")
    refs = [_ref(client, "docs", f"n/{i}.txt", f"file {i}".encode()) for i in range(50)]
    edits = [
        {"op": "create", "item": {"id": f"n{i:02d}", "attachment": refs[i]}} for i in range(50)
    ]
    r = client.post("/api/ref_note/_batch/edit", json={"edits": edits}, headers=ann)
    assert r.status_code == 200 and all(e["ok"] for e in r.json()["results"])
    CountingCatalog.reads = 0
    page = client.get("/api/ref_note", params={"limit": "50", "order": "id"}, headers=ann)
    assert CountingCatalog.reads == 1
    items = page.json()["items"]
    assert len(items) == 50 and all(i["attachment"]["url"] for i in items)
    assert client.get(items[7]["attachment"]["url"]).content == b"file 7"
    CountingCatalog.reads = 0
    client.post(
        "/api/ref_note/_batch/read", json={"keys": [f"n{i:02d}" for i in range(50)]}, headers=ann
    )
    assert CountingCatalog.reads == 1


def test_on_delete_delete_keep_block(client: TestClient) -> None:
    ann = bearer("ann")
    att = _ref(client, "docs", "att.txt", b"a")
    keep = _ref(client, "docs", "keep.txt", b"k")
    cover = _ref(client, "pics", "cover.txt", b"c")
    client.post(
        "/api/ref_note",
        json={"id": "d1", "attachment": att, "extra": keep, "cover": cover},
        headers=ann,
    )
    r = client.delete("/api/ref_note/d1", headers=ann)
    assert r.status_code == 409 and r.json()["field"] == "cover"
    assert client.get("/api/ref_note/d1", headers=ann).status_code == 200
    assert client.delete("/api/_files/pics/cover.txt", headers=ann).status_code == 204
    assert client.delete("/api/ref_note/d1", headers=ann).status_code == 204
    assert client.get("/api/_files/docs/att.txt", headers=ann).status_code == 404  # deleted
    assert client.get("/api/_files/docs/keep.txt", headers=ann).content == b"k"  # kept


def test_declarations_are_checked() -> None:
    with pytest.raises(TypeError, match="FileRef"):

        @stored
        class Wrong:
            id: str
            pic: str = Attr(files="docs")

    with pytest.raises(ValueError, match="on_delete"):
        Attr(files="docs", on_delete="cascade")  # type: ignore[arg-type]
    from persisty.errors import ValidationError

    with pytest.raises(ValidationError, match="refers to file store 'docs'"):
        app(persisty.aio.connect("memory://"), [RefNote])
