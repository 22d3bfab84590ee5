"""A real browser uploads by grant: a page served by the test app gets a grant, posts a 3 MB
PNG from an ``<input type=file>`` straight to S3 on moto_server (bucket CORS configured),
completes the upload and shows the file back in an ``<img>`` whose ``naturalWidth > 0``.

Headless Debian Chromium (``/usr/bin/chromium``) driven by playwright; no browser is
downloaded.
"""

from __future__ import annotations

import os
import random
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
PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>upload</title></head>
<body>
<input type="file" id="file" accept="image/*">
<img id="shown" alt="">
<pre id="log"></pre>
<script>
const TOKEN = "__TOKEN__";
const auth = {"Authorization": "Bearer " + TOKEN};
document.getElementById("file").addEventListener("change", async (event) => {
  const log = (text) => { document.getElementById("log").textContent += text + "\\n"; };
  try {
    const file = event.target.files[0];
    // 1. a grant: the server checks the caller's right before any URL exists
    const granted = await fetch("/api/_files/media/_uploads", {
      method: "POST", headers: {...auth, "Content-Type": "application/json"},
      body: JSON.stringify({key: "photos/" + file.name, size: file.size,
                            content_type: file.type, filename: file.name})});
    const grant = await granted.json();
    log("grant " + granted.status);
    // 2. the bytes go straight to the grant's URL (S3), never through the app
    const form = new FormData();
    for (const [name, value] of Object.entries(grant.fields)) form.append(name, value);
    form.append("file", file);
    const sent = await fetch(grant.url, {method: "POST", body: form});
    log("upload " + sent.status);
    // 3. completion: checked (size, type, sniffed bytes), then visible
    const done = await fetch(grant.complete_url, {method: "POST", headers: auth});
    const info = await done.json();
    log("complete " + done.status + " " + info.size);
    const img = document.getElementById("shown");
    img.onload = () => log("loaded " + img.naturalWidth);
    img.onerror = () => log("img error");
    img.src = info.url;
  } catch (e) { log("error " + e); }
});
</script></body></html>"""


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
    token = AUTH.issue("ann", ["user"])

    async def page(request: Request) -> Response:
        return HTMLResponse(PAGE.replace("__TOKEN__", token))

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
