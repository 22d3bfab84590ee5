"""What the admin's browser tests share: the seeded app on uvicorn, one Chromium per module,
a fresh context per test that records every request, console error and CSP violation."""

from __future__ import annotations

import asyncio
import datetime as dt
import enum
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

import uvicorn
from examples.messenger.app import POLICIES, USERS, Channel, Message, User, seed

import persisty
import persisty.aio
from persisty import Attr, stored
from persisty.layers import Policy
from persisty.serve import DemoAuthenticator, JWTAuth
from persisty.serve import app as make_app
from persisty.store import Edit

ROOT = Path(__file__).resolve().parents[2]
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
ARTIFACTS = ROOT / "test-artifacts" / "admin"


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"
    BLUE = "blue"


@stored
class Gadget:
    """A store with every attribute kind (the admin's widgets and formats)."""

    id: str = Attr(min_length=1, max_length=40, pattern=r"^[a-z0-9-]+$")
    name: str = Attr(max_length=60)
    owner: str = Attr(default="", max_length=40)
    count: int = Attr(default=0, ge=0, le=1_000_000)
    price: float = 0.0
    cost: Decimal = Decimal("0")
    active: bool = False
    checked: bool | None = None
    released: dt.date | None = None
    seen_at: dt.datetime | None = None
    color: Color = Color.RED
    ref: UUID | None = None
    tags: list[str] = Attr(default_factory=list)
    specs: dict[str, Any] = Attr(default_factory=dict)
    blob: bytes = b""
    notes: str = Attr(default="", max_length=1000, sortable=False)
    created_at: dt.datetime = Attr(generated="created", default=None)


@stored
class AuditEntry:
    """Only admins see these."""

    id: str
    text: str = ""


POLICY = {
    **POLICIES,
    Gadget: Policy.scoped({"user": Policy.owner("owner"), "admin": Policy.allow_all()}),
    AuditEntry: Policy.scoped({"admin": Policy.allow_all()}),
}
STORES = [User, Channel, Message, Gadget, AuditEntry]
GADGETS = 250
CHANNELS = 5000


def gadget(i: int, **changes: Any) -> Gadget:
    values: dict[str, Any] = dict(
        id=f"g-{i:04d}",
        name=f"Gadget {i:03d}",
        owner=("ann", "bob")[i % 2],
        count=(i * 37) % 500,
        price=i / 4,
        cost=Decimal(i) / 100,
        active=i % 3 == 0,
        checked=(None, True, False)[i % 3],
        color=list(Color)[i % 3],
        released=dt.date(2024, 1, 1) + dt.timedelta(days=i),
        seen_at=dt.datetime(2024, 3, 1, tzinfo=dt.UTC) + dt.timedelta(hours=7 * i),
        tags=[f"t{i % 5}"],
        notes=f"note {i}" if i % 4 else "",
    )
    values.update(changes)
    return Gadget(**values)


async def seed_all(db: persisty.aio.AsyncDatabase) -> None:
    await seed(db)
    channels = db.store(Channel)
    for start in range(0, CHANNELS, 1000):
        await channels.edit_batch(
            [
                Edit.create(Channel(id=f"chan-{i:04d}", title=f"Channel {i}"))
                for i in range(start, min(start + 1000, CHANNELS))
            ]
        )
    await db.store(Gadget).edit_batch([Edit.create(gadget(i)) for i in range(GADGETS)])
    await db.store(AuditEntry).create(AuditEntry(id="a1", text="secret"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Server:
    origin: str
    url: str
    db: Any  # a sync database on the same file, to check what was written

    def store(self, cls: type[Any]) -> Any:
        return self.db.store(cls)


def serve(
    url: str,
    *,
    stores: list[type[Any]],
    policies: dict[Any, Any],
    on_startup: Callable[[Any], Any],
    anonymous: list[type[Any]],
) -> Iterator[Server]:
    db = persisty.aio.connect(url)
    asgi = make_app(
        db,
        stores,
        auth=JWTAuth(secret="admin browser tests " * 3),
        login=DemoAuthenticator(USERS),
        policies=policies,
        anonymous=anonymous,
        title="persisty messenger",
        admin=True,
        on_startup=[lambda: on_startup(db)],
    )
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(asgi, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 120
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the app did not start"
        time.sleep(0.05)
    sync_db = persisty.connect(url)
    try:
        yield Server(f"http://127.0.0.1:{port}", url, sync_db)
    finally:
        sync_db.close()
        server.should_exit = True
        thread.join(10)


def launch() -> Iterator[Any]:
    assert CHROMIUM.exists(), "Chromium is missing: scripts/test installs it"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


CSP_WATCH = """
window.__csp = [];
document.addEventListener('securitypolicyviolation',
  e => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));
"""


@dataclass
class Tab:
    """A fresh browser context with one page, recording what it did."""

    context: Any
    page: Any
    origin: str
    requests: list[str] = field(default_factory=list)
    foreign: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def go(self, path: str) -> Any:
        return self.page.goto(self.origin + path)

    def sign_in(self, user: str, password: str | None = None) -> None:
        self.go("/admin/login")
        self.page.fill("#username", user)
        self.page.fill("#password", password or user)
        with self.page.expect_navigation():
            self.page.click("button:has-text('Sign in')")
        assert "/admin/login" not in self.page.url, self.page.content()[:2000]

    def keys(self) -> list[str]:
        return list(
            self.page.locator("tbody tr[data-key]").evaluate_all(
                "rows => rows.map(r => r.dataset.key)"
            )
        )

    def csp(self) -> list[str]:
        if not self.context.pages or self.page.evaluate("typeof window.__csp") == "undefined":
            return []
        return list(self.page.evaluate("window.__csp"))

    def new_page(self) -> Any:
        page = self.context.new_page()
        self._watch(page)
        return page

    def _watch(self, page: Any) -> None:
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(str(e)))


def open_tab(browser: Any, origin: str, **options: Any) -> Tab:
    context = browser.new_context(**options)
    context.add_init_script(CSP_WATCH)
    tab = Tab(context, None, origin)

    def guard(route: Any) -> None:
        url = route.request.url
        tab.requests.append(url)
        if url == origin or url.startswith(origin + "/"):
            route.continue_()
        else:
            tab.foreign.append(url)
            route.abort()

    context.route("**/*", guard)
    tab.page = context.new_page()
    tab._watch(tab.page)
    return tab


def wait_for(predicate: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def run(coro: Any) -> Any:
    return asyncio.run(coro)
