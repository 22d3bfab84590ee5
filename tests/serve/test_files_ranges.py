"""Downloads answer ``Range`` headers exactly as Starlette's ``FileResponse`` does for the
same bytes on disk (status, Content-Range, Content-Length, body; multipart boundaries
aside), on every file backend; conditional GETs; HEAD."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Mount, Route
from starlette.testclient import TestClient
from tests.serve._files_backends import BACKENDS, open_files

import persisty.aio
from persisty.serve import router

SIZES = [0, 1, 999, 70_001]


def _payload(size: int) -> bytes:
    return bytes((i * 7 + i // 251) % 256 for i in range(size))


@pytest.fixture(scope="module", params=BACKENDS)
def client(request: Any, tmp_path_factory: Any) -> Iterator[TestClient]:
    root: Path = tmp_path_factory.mktemp("ranges")
    for size in SIZES:
        (root / f"f{size}.bin").write_bytes(_payload(size))

    async def plain(req: Request) -> Response:
        return FileResponse(
            root / f"f{req.path_params['size']}.bin", media_type="application/octet-stream"
        )

    db = persisty.aio.connect("memory://")
    files = open_files(request.param, "r" + uuid.uuid4().hex[:8])
    site = Starlette(
        routes=[Route("/plain/{size}", plain), Mount("/", router(db, [], files={"docs": files}))]
    )
    with TestClient(site) as c:
        for size in SIZES:
            r = c.put(
                f"/api/_files/docs/f{size}.bin",
                content=_payload(size),
                headers={"Content-Type": "application/octet-stream"},
            )
            assert r.status_code == 201, r.text
        yield c


def _spec(size: int) -> st.SearchStrategy[str]:
    n = st.integers(min_value=-3, max_value=size + 5) | st.integers(0, 10**12)
    num = st.builds(str, n) | st.sampled_from(
        ["", " 1", "1 ", "+2", "0x1", "a", "1_0", "--1", "9" * 30]
    )
    return st.one_of(
        st.builds(lambda a, b: f"{a}-{b}", num, num),
        st.builds(lambda a: f"{a}-", num),
        st.builds(lambda b: f"-{b}", num),
        st.sampled_from(["", "-", "abc", "1", "=", "- ", " 0 - 0 "]),
        st.text(alphabet="0123456789-, =ab", max_size=8),
    )


@st.composite
def range_headers(draw: Any) -> tuple[int, str]:
    size = draw(st.sampled_from(SIZES))
    unit = draw(st.sampled_from(["bytes", "bytes", "bytes", "Bytes", " bytes ", "items", ""]))
    if draw(st.integers(0, 30)) == 0:
        specs = ",".join(["0-0"] * draw(st.integers(99, 102)))
    else:
        specs = ",".join(draw(st.lists(_spec(size), min_size=1, max_size=5)))
    sep = draw(st.sampled_from(["=", "=", "=", "=", "", "=="]))
    return size, f"{unit}{sep}{specs}"


_BOUNDARY = re.compile(rb"[0-9a-f]{26}")


def _answer(r: Any) -> tuple[Any, ...]:
    body = r.content if r.status_code in (200, 206) else None
    ctype = r.headers.get("content-type", "")
    if ctype.startswith("multipart/byteranges"):
        body = _BOUNDARY.sub(b"B", body or b"")
        ctype = "multipart/byteranges"
    return (
        r.status_code,
        r.headers.get("content-range"),
        r.headers.get("content-length") if body is not None else None,
        body,
        ctype if r.status_code in (200, 206) else None,
    )


@settings(
    max_examples=500,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=range_headers())
def test_500_random_range_headers_answer_as_file_response(
    client: TestClient, case: tuple[int, str]
) -> None:
    size, header = case
    ours = client.get(f"/api/_files/docs/f{size}.bin", headers={"Range": header})
    theirs = client.get(f"/plain/{size}", headers={"Range": header})
    assert _answer(ours) == _answer(theirs), header
    if ours.status_code == 416:
        assert ours.headers["content-range"] == f"bytes */{size}"


def test_head_matches_get_headers(client: TestClient) -> None:
    for header in (None, "bytes=0-9", "bytes=0-1,5-6"):
        h = {"Range": header} if header else {}
        got = client.get("/api/_files/docs/f999.bin", headers=h)
        head = client.head("/api/_files/docs/f999.bin", headers=h)
        assert head.status_code == got.status_code and head.content == b""
        assert head.headers["content-length"] == got.headers["content-length"]


def test_download_headers_and_conditional_gets(client: TestClient) -> None:
    url = "/api/_files/docs/f999.bin"
    r = client.get(url)
    assert r.status_code == 200 and r.content == _payload(999)
    etag, modified = r.headers["etag"], r.headers["last-modified"]
    assert re.fullmatch(r'"[0-9a-f]{64}"', etag)
    assert r.headers["accept-ranges"] == "bytes"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["content-disposition"] == 'attachment; filename="f999.bin"'
    assert client.get(url, headers={"If-None-Match": etag}).status_code == 304
    assert client.get(url, headers={"If-None-Match": f"W/{etag}"}).status_code == 304
    assert client.get(url, headers={"If-None-Match": f'"x", {etag}'}).status_code == 304
    assert client.get(url, headers={"If-None-Match": '"other"'}).status_code == 200
    assert client.get(url, headers={"If-Modified-Since": modified}).status_code == 304
    old = "Mon, 01 Jan 2001 00:00:00 GMT"
    assert client.get(url, headers={"If-Modified-Since": old}).status_code == 200
    # If-None-Match wins over If-Modified-Since
    assert (
        client.get(url, headers={"If-None-Match": '"x"', "If-Modified-Since": modified}).status_code
        == 200
    )
    assert client.get(url, headers={"If-Match": '"x"'}).status_code == 412
    assert client.get(url, headers={"If-Match": etag}).status_code == 200
    assert client.get(url, headers={"If-Unmodified-Since": old}).status_code == 412
    not_modified = client.get(url, headers={"If-None-Match": etag})
    assert not_modified.headers["etag"] == etag and not_modified.content == b""
    # If-Range: the range applies only while the validator holds
    for validator, status in (
        (etag, 206),
        (modified, 206),
        ('"old"', 200),
        (f"W/{etag}", 200),
        (old, 200),
    ):
        got = client.get(url, headers={"Range": "bytes=0-9", "If-Range": validator})
        assert got.status_code == status, validator
        assert got.content == (_payload(999)[:10] if status == 206 else _payload(999))
    assert client.get("/api/_files/docs/none.bin").status_code == 404
    assert client.get("/api/_files/docs/a/../b").status_code in (404, 422)
