"""Files in GraphQL: the ``File`` type, ``<store>Files`` queries, ``FileRef`` attributes
resolved from one catalog read per page (counted), and the ``beginUpload`` /
``completeUpload`` / ``deleteFile`` mutations under the file policies."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient
from tests.serve._files_backends import BACKENDS, open_files
from tests.serve.test_files_refs import CountingCatalog, RefNote

import persisty.aio
from persisty.layers import Policy
from persisty.serve import JWTAuth, app

AUTH = JWTAuth(secret="a test secret that is long enough for HS256 ok")


def bearer(sub: str, scopes: tuple[str, ...] = ("user",)) -> dict[str, str]:
    return {"Authorization": f"Bearer {AUTH.issue(sub, list(scopes))}"}


@pytest.fixture(params=BACKENDS)
def client(request: Any) -> Iterator[TestClient]:
    docs = open_files(request.param, "g" + uuid.uuid4().hex[:8])
    pics = open_files(request.param, "q" + uuid.uuid4().hex[:8])
    docs.catalog = CountingCatalog(docs.catalog)
    owner = Policy.scoped({"user": Policy.owner("owner"), "viewer": Policy.read_only()})
    asgi = app(
        persisty.aio.connect("memory://", namespace="g" + uuid.uuid4().hex[:8]),
        [RefNote],
        auth=AUTH,
        policies={RefNote: owner},
        files={"docs": docs, "pics": pics},
        file_policies={"docs": owner, "pics": owner},
    )
    with TestClient(asgi) as c:
        yield c


def gql(c: TestClient, query: str, headers: dict[str, str], **variables: Any) -> Any:
    r = c.post("/graphql", json={"query": query, "variables": variables}, headers=headers)
    assert r.status_code in (200, 400), r.text
    return r.json()


def test_files_query_and_refs_from_one_catalog_read(client: TestClient) -> None:
    ann = bearer("ann")
    for i in range(50):
        r = client.put(f"/api/_files/docs/n/{i:02d}.txt", content=f"file {i}".encode(), headers=ann)
        client.post(
            "/api/ref_note",
            json={
                "id": f"n{i:02d}",
                "attachment": {"key": f"n/{i:02d}.txt", "etag": r.json()["etag"]},
            },
            headers=ann,
        )
    client.put("/api/_files/docs/bob.txt", content=b"bob", headers=bearer("bob"))
    got = gql(
        client,
        '{ docsFiles(prefix: "n/", limit: 3) { items { key size contentType '
        "etag url(expiresIn: 60) } next_page_key } }",
        ann,
    )
    files = got["data"]["docsFiles"]
    assert [f["key"] for f in files["items"]] == ["n/00.txt", "n/01.txt", "n/02.txt"]
    assert files["items"][1]["size"] == 6 and files["next_page_key"]
    assert client.get(files["items"][1]["url"]).content == b"file 1"
    everyone = gql(client, "{ docsFiles(limit: 100) { items { key } } }", ann)
    assert "bob.txt" not in [f["key"] for f in everyone["data"]["docsFiles"]["items"]]
    CountingCatalog.reads = 0
    page = gql(
        client,
        '{ refNoteSearch(limit: 50, order: ["id"]) { items { id attachment '
        "{ key etag size contentType url } } } }",
        ann,
    )
    assert CountingCatalog.reads == 1
    items = page["data"]["refNoteSearch"]["items"]
    assert len(items) == 50 and all(i["attachment"]["url"] for i in items)
    assert client.get(items[9]["attachment"]["url"]).content == b"file 9"
    # another owner sees neither the notes nor the files
    bob = gql(client, "{ docsFiles { items { key } } refNoteCount }", bearer("bob"))
    assert [f["key"] for f in bob["data"]["docsFiles"]["items"]] == ["bob.txt"]
    assert bob["data"]["refNoteCount"] == 0


BEGIN = """mutation($key: String, $size: Int!) {
  beginUpload(store: docs, key: $key, size: $size, contentType: "text/plain") {
    upload_id key url method fields parts { part_number url } } }"""


def test_upload_mutations(client: TestClient) -> None:
    ann = bearer("ann")
    data = b"uploaded through a grant"
    got = gql(client, BEGIN, ann, key="up/a.txt", size=len(data))
    grant = got["data"]["beginUpload"]
    assert grant["key"] == "up/a.txt" and grant["method"] == "POST"
    post = httpx.post if grant["url"].startswith("http") else client.post  # S3, or hosted
    r = post(
        grant["url"], data=dict(grant["fields"]), files={"file": ("a.txt", data, "text/plain")}
    )
    assert r.status_code == 204, r.text
    done = gql(
        client,
        "mutation($id: String!) { completeUpload(store: docs, uploadId: $id) "
        "{ key size etag url } }",
        ann,
        id=grant["upload_id"],
    )
    assert done["data"]["completeUpload"]["size"] == len(data)
    assert client.get(done["data"]["completeUpload"]["url"]).content == data
    other = gql(
        client,
        "mutation($id: String!) { completeUpload(store: docs, uploadId: $id) { key } }",
        bearer("bob"),
        id=grant["upload_id"],
    )
    assert other["data"] is None and other["errors"][0]["extensions"]["code"] == "not_found"
    gone = gql(client, 'mutation { deleteFile(store: docs, key: "up/a.txt", ifMatch: "x") }', ann)
    assert gone["errors"][0]["extensions"]["code"] == "precondition_failed"
    assert (
        gql(client, 'mutation { deleteFile(store: docs, key: "up/a.txt") }', ann)["data"][
            "deleteFile"
        ]
        is True
    )
    assert client.get("/api/_files/docs/up/a.txt", headers=ann).status_code == 404


def test_no_rights_no_grant(client: TestClient) -> None:
    for headers in ({}, bearer("val", ("viewer",))):
        r = client.post(
            "/graphql", json={"query": BEGIN, "variables": {"size": 3}}, headers=headers
        )
        body = r.json()
        assert body.get("data") is None or body["data"].get("beginUpload") is None
        assert body["errors"][0]["extensions"]["code"] in ("unauthorized", "forbidden")
        assert "upload_id" not in r.text and "token" not in r.text


def test_create_with_a_file_ref_is_checked(client: TestClient) -> None:
    ann = bearer("ann")
    etag = client.put("/api/_files/docs/g.txt", content=b"g", headers=ann).json()["etag"]
    create = (
        'mutation($ref: JSON) { createRefNote(item: {id: "g1", attachment: $ref}) '
        "{ id attachment { key size url } } }"
    )
    bad = gql(client, create, ann, ref={"key": "g.txt", "etag": "0" * 64})
    assert bad["errors"][0]["extensions"]["field"] == "attachment"
    good = gql(client, create, ann, ref={"key": "g.txt", "etag": etag})
    shown = good["data"]["createRefNote"]["attachment"]
    assert shown["size"] == 1 and client.get(shown["url"]).content == b"g"
