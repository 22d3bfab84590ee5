"""A real browser uploads by grant: the page of docs/files.md, served by the test app, gets
a grant, posts a 3 MB PNG from an ``<input type=file>`` straight to S3 on moto_server
(bucket CORS configured), completes the upload and shows the file back in an ``<img>``
whose ``naturalWidth > 0``.

Headless Debian Chromium (``/usr/bin/chromium``) driven by playwright; no browser is
downloaded.
"""

from __future__ import annotations

import os
import random
import re
import socket
import struct
import threading
import time
import uuid
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import uvicorn
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route
from tests.files._engines import endpoint

import persisty.aio
import persisty.files.aio
from persisty.files import Limits
from persisty.layers import Policy
from persisty.serve import JWTAuth, app

CHROMIUM = Path("/usr/bin/chromium")
AUTH = JWTAuth(secret="a browser test secret long enough for HS256")
DOCS = Path(__file__).resolve().parents[2] / "docs" / "files.md"


def docs_page() -> str:
    """The upload page of docs/files.md (its one ```html block): the test drives the
    documented page itself."""
    text = DOCS.read_text()
    found = re.search(r"```html\n(.*?)```", text, re.S)
    assert found, "docs/files.md has no ```html block"
    return found.group(1)


def _png(width: int, height: int) -> bytes:
    """A valid RGB PNG of random pixels (incompressible: the file is about 3 bytes a
    pixel)."""
    rng = random.Random(7)
    rows = b"".join(b"\x00" + rng.randbytes(width * 3) for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows, 1))
        + chunk(b"IEND", b"")
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def origin(tmp_path: Path) -> Iterator[str]:
    bucket = "persisty-browser-" + uuid.uuid4().hex[:8]
    s3 = boto3.client("s3", endpoint_url=endpoint(), region_name="us-east-1")
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_cors(
        Bucket=bucket,
        CORSConfiguration={
            "CORSRules": [
                {
                    "AllowedOrigins": ["*"],
                    "AllowedMethods": ["GET", "POST", "PUT"],
                    "AllowedHeaders": ["*"],
                    "ExposeHeaders": ["ETag"],
                    "MaxAgeSeconds": 600,
                }
            ]
        },
    )
    files = persisty.files.aio.connect(
        f"s3://{bucket}/app?region=us-east-1&endpoint_url={endpoint()}",
        name="media",
        catalog=f"sqlite:///{tmp_path / 'catalog.db'}",
        limits=Limits(max_size=10_000_000, content_types=["image/*"]),
    )
    asgi = app(
        persisty.aio.connect("memory://"),
        [],
        auth=AUTH,
        files={"media": files},
        file_policies={"media": Policy.owner("owner")},
        file_redirect=True,
    )

    async def page(request: Request) -> Response:
        return HTMLResponse(docs_page())

    asgi.router.routes.insert(0, Route("/upload-test", page))
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(asgi, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the app did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


def test_browser_uploads_3_mb_to_s3_and_shows_it(origin: str, tmp_path: Path) -> None:
    assert CHROMIUM.exists(), "Chromium is missing: apt-get install -y chromium"
    assert os.environ.get("AWS_ENDPOINT_URL"), "source scripts/services first"
    picture = tmp_path / "cat.png"
    picture.write_bytes(_png(1024, 1000))
    assert picture.stat().st_size > 3_000_000
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM), args=["--headless", "--no-sandbox", "--disable-gpu"]
        )
        try:
            page = browser.new_page()
            token = AUTH.issue("ann", ["user"])  # what signing in would have stored
            page.add_init_script(f"sessionStorage.setItem('token', '{token}')")
            page.goto(origin + "/upload-test")
            page.set_input_files("#file", str(picture))
            page.wait_for_function(
                "document.getElementById('log').textContent.match(/loaded|error/)", timeout=60_000
            )
            log: Any = page.text_content("#log")
            width = page.evaluate("document.getElementById('shown').naturalWidth")
        finally:
            browser.close()
    assert "grant 201" in log and "upload 204" in log and "complete 201" in log, log
    assert f"complete 201 {picture.stat().st_size}" in log, log
    assert width == 1024, log
