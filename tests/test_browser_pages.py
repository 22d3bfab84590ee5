"""``/docs`` (Swagger UI) and ``/graphql`` (GraphiQL) render in a real browser with no network
but the app's own origin: headless Debian Chromium (``/usr/bin/chromium``, which
``scripts/test`` installs when it is missing) driven by playwright, every request to another
origin aborted and recorded.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from examples.messenger.app import create_app
from starlette.testclient import TestClient

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def origin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The messenger example served by uvicorn on a free loopback port."""
    db = tmp_path_factory.mktemp("browser") / "messenger.db"
    port = _free_port()
    asgi = create_app(f"sqlite:///{db}", demo=True)
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


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    assert CHROMIUM.exists(), (
        "Chromium is missing: scripts/test installs it (apt-get install -y chromium)"
    )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


def _open(browser: Any, origin: str, path: str) -> tuple[Any, list[str], list[str]]:
    """A page at ``origin + path`` whose requests to any other origin are aborted."""
    context = browser.new_context()
    page = context.new_page()
    foreign: list[str] = []
    same: list[str] = []

    def guard(route: Any) -> None:
        url = route.request.url
        if url == origin or url.startswith(origin + "/"):
            same.append(url)
            route.continue_()
        else:
            foreign.append(url)
            route.abort()

    context.route("**/*", guard)
    page.goto(origin + path)
    return page, same, foreign


def test_swagger_ui_renders_the_operations_offline(browser: Any, origin: str) -> None:
    page, same, foreign = _open(browser, origin, "/docs")
    page.wait_for_selector(".opblock-summary-path", timeout=60_000)
    paths = page.locator(".opblock-summary-path").all_inner_texts()
    assert any("/api/message" in p for p in paths), paths
    assert page.locator(".opblock").count() >= 15
    assert foreign == []
    assert any(u.endswith("/api/openapi.json") for u in same)
    page.context.close()


def test_graphiql_renders_its_editor_offline(browser: Any, origin: str) -> None:
    page, same, foreign = _open(browser, origin, "/graphql")
    page.wait_for_selector(".graphiql-query-editor .CodeMirror", timeout=60_000)
    assert page.locator(".graphiql-container").count() == 1
    # the schema was fetched from the app itself (GraphiQL's introspection query)
    deadline = time.monotonic() + 30
    while not any(u.endswith("/graphql") for u in same[1:]) and time.monotonic() < deadline:
        page.wait_for_timeout(100)
    assert any(u.endswith("/graphql") for u in same[1:]), same
    assert foreign == []
    page.context.close()


def test_pages_refer_only_to_their_own_origin_and_assets_cache_long(tmp_path: Path) -> None:
    with TestClient(create_app(f"sqlite:///{tmp_path}/m.db", demo=True)) as client:
        for path in ("/docs", "/graphql"):
            page = client.get(path, headers={"accept": "text/html"})
            assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
            refs = re.findall(r'(?:src|href)="([^"]+)"', page.text)
            assert refs and all("//" not in r for r in refs), refs
            for ref in refs:
                asset = client.get("/" + ref)
                assert asset.status_code == 200, ref
                assert asset.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert client.get("/_static/../static/README.md").status_code == 404
        root = client.get("/")
        assert root.status_code == 200
        assert root.json() == {
            "api": "/api",
            "openapi": "/api/openapi.json",
            "docs": "/docs",
            "graphql": "/graphql",
            "admin": "/admin/",
        }
        browser_root = client.get("/", headers={"accept": "text/html"})
        assert 'href="docs"' in browser_root.text and 'href="api"' in browser_root.text
