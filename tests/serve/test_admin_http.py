"""The admin over HTTP (no browser): the standalone router without auth, security headers and
assets, CSRF and Origin checks, relation rules on delete, bulk patch, exports and the pieces
that decide what is safe (``next``, CSV cells, HTML patterns, local times)."""

from __future__ import annotations

import contextlib
import datetime as dt
import re
import uuid
import zoneinfo
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient
from tests.conftest import MYSQL_URL, POSTGRES_URL, REDIS_URL

import persisty
import persisty.aio
from persisty import Attr, stored
from persisty.errors import ValidationError
from persisty.layers import HasMany
from persisty.model import meta_of
from persisty.serve import admin
from persisty.serve.admin._fields import _html_pattern, to_utc_text
from persisty.serve.admin._listing import csv_cell
from persisty.serve.admin._site import safe_next


@stored
class Shelf:
    id: str
    label: str = Attr(default="", max_length=40)
    books = HasMany("Book", "shelf_id", on_delete="block")


@stored
class Book:
    id: str
    shelf_id: str = ""
    title: str = Attr(default="", max_length=80)
    pages: int = 0


ENGINES = {"sqlite": None, "postgresql": POSTGRES_URL, "mysql": MYSQL_URL, "redis": REDIS_URL}


@contextlib.contextmanager
def _admin_client(url: str) -> Iterator[TestClient]:
    namespace = "adm" + uuid.uuid4().hex[:10]
    with persisty.connect(url, namespace=namespace) as db:
        db.store(Shelf).create(Shelf(id="s1", label="first"))
        for i in range(3):
            db.store(Book).create(Book(id=f"b{i}", shelf_id="s1", title=f"=cmd {i}", pages=i))
    adb = persisty.aio.connect(url, namespace=namespace)

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        yield
        await adb.close()

    asgi = Starlette(routes=admin(adb, [Shelf, Book]).routes, lifespan=lifespan)
    try:
        with TestClient(asgi, base_url="https://testserver") as c:
            c.sync_db = lambda: persisty.connect(url, namespace=namespace)
            yield c
    finally:
        with persisty.connect(url, namespace=namespace) as db:
            db.drop()  # the whole namespace


@pytest.fixture(params=list(ENGINES))
def client(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TestClient]:
    """The admin without auth over SQLite, PostgreSQL, MariaDB and Redis."""
    url = ENGINES[request.param] or f"sqlite:///{tmp_path}/shelves.db"
    with _admin_client(url) as c:
        yield c


@pytest.fixture
def sqlite_client(tmp_path: Path) -> Iterator[TestClient]:
    with _admin_client(f"sqlite:///{tmp_path}/shelves.db") as c:
        yield c


def _token(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found
    return found.group(1)


ORIGIN = {"origin": "https://testserver"}


def test_the_standalone_admin_without_auth_serves_pages_with_strict_headers(
    client: TestClient,
) -> None:
    index = client.get("/admin/")
    assert index.status_code == 200 and 'href="/admin/shelf"' in index.text
    csp = index.headers["content-security-policy"]
    for part in (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "frame-ancestors 'none'",
        "form-action 'self'",
    ):
        assert part in csp
    assert index.headers["x-frame-options"] == "DENY"
    assert index.headers["cache-control"] == "no-store"
    assert "style=" not in index.text and "<script>" not in index.text  # nothing inline
    csrf = [c for c in client.cookies.jar if c.name == "persisty_admin_csrf"]
    assert csrf and csrf[0].secure and csrf[0].path == "/admin"  # https: Secure cookies
    assets = re.findall(r'(?:href|src)="(/admin/_static/[^"]+)"', index.text)
    assert len(assets) == 3
    for ref in assets:
        got = client.get(ref)
        assert got.status_code == 200
        assert got.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert client.get("/admin/_static/x/admin.css").status_code == 404
    assert client.get("/admin/nothing-here").status_code == 404


def test_posts_need_the_token_and_this_origin(client: TestClient) -> None:
    token = _token(client.get("/admin/book/_new").text)
    data = {"csrf_token": token, "id": "new", "title": "t", "pages": "1", "shelf_id": "s1"}
    assert client.post("/admin/book/_new", data=data).status_code == 403  # no Origin/Referer
    assert (
        client.post(
            "/admin/book/_new", data=data, headers={"referer": "https://evil.example/"}
        ).status_code
        == 403
    )
    assert (
        client.post(
            "/admin/book/_new", data={**data, "csrf_token": "x"}, headers=ORIGIN
        ).status_code
        == 403
    )
    assert client.post("/admin/book/_new", data=data, headers={"origin": "null"}).status_code == 403
    with client.sync_db() as db:
        assert db.store(Book).read("new") is None
    made = client.post(
        "/admin/book/_new",
        data=data,
        headers={"referer": "https://testserver/admin/book/_new"},
        follow_redirects=False,
    )
    assert made.status_code == 303 and made.headers["location"] == "/admin/book/new"


def test_a_blocked_delete_says_why_and_deletes_nothing(client: TestClient) -> None:
    confirm = client.get("/admin/shelf/s1/_delete")
    assert "blocked by 3 books" in confirm.text
    etag = re.search(r'name="_etag" value="([^"]+)"', confirm.text)
    assert etag
    refused = client.post(
        "/admin/shelf/s1/_delete",
        headers=ORIGIN,
        data={"csrf_token": _token(confirm.text), "_etag": etag.group(1)},
    )
    assert refused.status_code == 409 and "3 book item(s) refer to it" in refused.text
    with client.sync_db() as db:
        assert db.store(Shelf).read("s1") is not None


def test_bulk_patch_and_an_unknown_key(client: TestClient) -> None:
    token = _token(client.get("/admin/book").text)
    done = client.post(
        "/admin/book/_bulk",
        headers=ORIGIN,
        follow_redirects=False,
        data={
            "csrf_token": token,
            "key": ["b0", "b1", "nope"],
            "action": "patch",
            "_patch_attr": "pages",
            "_patch_value": "42",
            "_back": "/admin/book",
        },
    )
    assert done.status_code == 303 and done.headers["location"] == "/admin/book"
    assert client.get("/admin/book").text.count("2 updated, 1 not found") == 1
    with client.sync_db() as db:
        assert [b.pages for b in db.store(Book).read_batch(["b0", "b1", "b2"])] == [42, 42, 2]
    bad = client.post(
        "/admin/book/_bulk",
        headers=ORIGIN,
        data={
            "csrf_token": token,
            "key": ["b0"],
            "action": "patch",
            "_patch_attr": "pages",
            "_patch_value": "many",
            "_back": "https://evil.example/",
        },
    )
    assert bad.status_code == 422 and "not a number" in bad.text
    key = client.post(
        "/admin/book/_bulk",
        headers=ORIGIN,
        data={
            "csrf_token": token,
            "key": ["b0"],
            "action": "patch",
            "_patch_attr": "id",
            "_patch_value": "x",
        },
    )
    assert key.status_code == 422


def test_exports_escape_formulas_and_refuse_a_bad_filter_before_streaming(
    client: TestClient,
) -> None:
    got = client.get("/admin/book/_export?format=csv&pages__gte=1")
    assert got.status_code == 200 and got.headers["content-type"].startswith("text/csv")
    assert "attachment" in got.headers["content-disposition"]
    lines = got.text.strip().splitlines()
    assert lines[0] == "id,shelf_id,title,pages" and len(lines) == 3
    assert all(",'=cmd" in line for line in lines[1:])
    bad = client.get("/admin/book/_export?format=csv&pages__gte=x")
    assert bad.status_code == 422 and bad.headers["content-type"].startswith("text/html")
    assert client.get("/admin/book/_export?format=xml").status_code == 422
    assert client.get("/admin/book?order=-shelf_id,nope").status_code == 422


def test_safe_next_accepts_only_same_origin_paths() -> None:
    for good in ("/admin/book?x=1", "/admin/", "/admin/book/a%2Fb"):
        assert safe_next(good, "/admin") == good
    for bad in (
        "https://evil.example/",
        "//evil.example",
        "/\\evil.example",
        "evil",
        "javascript:alert(1)",
        "/admin\r\nSet-Cookie: x",
        "",
        None,
        "/" + "a" * 3000,
    ):
        assert safe_next(bad, "/admin") == "/admin/"


def test_csv_cells_that_a_spreadsheet_would_run_are_escaped() -> None:
    meta = meta_of(Book)
    for text in ("=1+2", "+1", "-1", "@SUM(A1)", "\tx", "\rx"):
        assert csv_cell(meta.attr("title"), text) == "'" + text
    assert csv_cell(meta.attr("title"), "plain") == "plain"
    assert csv_cell(meta.attr("pages"), -5) == "-5"  # a number is not a formula


def test_html_patterns_are_safe_translations_or_none() -> None:
    assert _html_pattern(r"^[a-z0-9-]+$") == r"[a-z0-9\-]+"
    assert _html_pattern(r"[a-z]+") is None  # unanchored: the server searches, HTML matches
    assert _html_pattern(r"^(?P<x>a)$") is None
    assert _html_pattern(r"^a|b$") is None


def test_local_times_are_stored_as_utc_and_a_skipped_time_is_refused() -> None:
    ny = zoneinfo.ZoneInfo("America/New_York")
    assert to_utc_text("2024-01-15T09:00", ny, "at") == "2024-01-15T14:00:00Z"
    assert to_utc_text("2024-07-15T09:00:30", ny, "at") == "2024-07-15T13:00:30Z"
    assert to_utc_text("2024-07-15T09:00:00+02:00", ny, "at") == "2024-07-15T07:00:00Z"
    with pytest.raises(ValidationError, match="does not exist"):
        to_utc_text("2024-03-10T02:30", ny, "at")
    with pytest.raises(ValidationError, match="not a date and time"):
        to_utc_text("soon", ny, "at")


HOSTILE_GETS = [
    "/admin/book?page_key=garbage",
    "/admin/book?limit=0",
    "/admin/book?limit=abc",
    "/admin/book?limit=1&limit=2",
    "/admin/book?filter={bad",
    "/admin/book?filter=[]",
    "/admin/book?prev=x&page_key=y",
    "/admin/book?pages__gte=x",
    "/admin/book?nope=1",
    "/admin/book?pages__regex=1",
    "/admin/book?order=",
    "/admin/book?order=-",
    "/admin/book?order=title,title",
    "/admin/book?q=" + "x" * 5000,
    "/admin/book/%00",
    "/admin/book/a%2Fb",
    "/admin/book/a%2Fb/_edit",
    "/admin/book/" + "k" * 3000,
    "/admin/book/_suggest?q=%00",
    "/admin/shelf/_suggest?q=" + "y" * 1000,
    "/admin/book/_export?format=jsonl&page_key=x",
    "/admin/book/_export?order=nope",
    "/admin/nope/_new",
    "/admin/nope/x",
    "/admin/book?filter=" + "[" * 200,
    "/admin/book?_tz=Nowhere/Land&pages__gte=1",
    "/admin/book?_tz=../../etc",
    "/admin/login?next=%0d%0aSet-Cookie:x",
    "/admin/book/b0/_delete?x=1",
]


@pytest.mark.parametrize("path", HOSTILE_GETS)
def test_hostile_urls_get_a_clear_answer_never_a_5xx(sqlite_client: TestClient, path: str) -> None:
    client = sqlite_client
    client.cookies.set("persisty_admin_tz", "../../../etc/passwd", path="/admin")
    got = client.get(path, follow_redirects=True)
    assert got.status_code < 500, (path, got.status_code, got.text[:500])
    assert "default-src 'self'" in got.headers.get("content-security-policy", "") or (
        got.headers["content-type"].startswith(
            ("application/json", "text/csv", "application/x-ndjson")
        )
    )


def test_hostile_posts_get_a_clear_answer_and_write_nothing(sqlite_client: TestClient) -> None:
    client = sqlite_client
    token = _token(client.get("/admin/book/_new").text)
    posts = [
        ("/admin/book/_new", {"csrf_token": token, "id": "", "pages": "1e999"}),
        ("/admin/book/_new", {"csrf_token": token, "id": "h0", "title": "\x00" * 81}),
        ("/admin/book/_new", {"csrf_token": token, "id": "h1", "pages": "9" * 400}),
        ("/admin/book/_new", {"csrf_token": token, "id": "h2", "_tz": "Mars/Base"}),
        ("/admin/book/b0/_edit", {"csrf_token": token, "_etag": "x", "pages": "-"}),
        ("/admin/book/b0/_edit", {"csrf_token": token, "pages": "3"}),  # no etag at all
        ("/admin/book/missing/_edit", {"csrf_token": token, "_etag": "x"}),
        ("/admin/book/b0/_delete", {"csrf_token": token}),
        ("/admin/book/_bulk", {"csrf_token": token, "key": ["b0"], "action": "explode"}),
        (
            "/admin/book/_bulk",
            {"csrf_token": token, "key": ["b0"] * 1001, "action": "delete", "confirm": "yes"},
        ),
        ("/admin/_theme", {"csrf_token": token, "theme": "<script>", "next": "//x"}),
        ("/admin/login", {"csrf_token": token, "username": "a", "password": "b"}),
    ]
    for path, data in posts:
        got = client.post(path, data=data, headers=ORIGIN, follow_redirects=False)
        assert got.status_code < 500, (path, got.status_code, got.text[:800])
        if got.status_code == 303:
            assert got.headers["location"].startswith("/admin"), got.headers["location"]
    raw = client.post(
        "/admin/book/_new",
        content=b"\xff\xfe" * 10,
        headers={**ORIGIN, "content-type": "application/x-www-form-urlencoded"},
    )
    assert raw.status_code in (400, 403)
    big = client.post(
        "/admin/book/_new",
        content=b"a=" + b"x" * (2 << 20),
        headers={**ORIGIN, "content-type": "application/x-www-form-urlencoded"},
    )
    assert big.status_code == 413
    json_body = client.post("/admin/book/_new", json={"id": "j"}, headers=ORIGIN)
    assert json_body.status_code in (403, 415)
    with client.sync_db() as db:
        assert sorted(b.id for b in db.store(Book).search_all()) == ["b0", "b1", "b2"]
        assert db.store(Book).read("b0").pages == 0


def test_mounted_under_a_path_with_sign_in(tmp_path: Path) -> None:
    from starlette.routing import Mount

    from persisty.serve import DemoAuthenticator, JWTAuth

    db = persisty.aio.connect(f"sqlite:///{tmp_path}/mounted.db")
    auth = JWTAuth(secret="a secret of at least thirty-two bytes!")
    site = Starlette(
        routes=[
            Mount(
                "/tools",
                routes=admin(
                    db,
                    [Shelf, Book],
                    auth=auth,
                    login=DemoAuthenticator({"ann": ("pw", [])}),
                    prefix="/back-office",
                    title="Back office",
                ).routes,
            )
        ]
    )
    with TestClient(site, base_url="http://testserver") as c:
        gate = c.get("/tools/back-office/book", follow_redirects=False)
        assert gate.status_code == 303
        assert gate.headers["location"] == (
            "/tools/back-office/login?next=%2Ftools%2Fback-office%2Fbook"
        )
        login = c.get(gate.headers["location"])
        assert "Back office" in login.text and 'action="/tools/back-office/login"' in login.text
        signed = c.post(
            "/tools/back-office/login",
            follow_redirects=False,
            headers={"origin": "http://testserver"},
            data={
                "csrf_token": _token(login.text),
                "username": "ann",
                "password": "pw",
                "next": "/tools/back-office/book",
            },
        )
        assert signed.status_code == 303
        assert signed.headers["location"] == "/tools/back-office/book"
        cookie = signed.headers["set-cookie"]
        assert "Path=/tools/back-office" in cookie and "HttpOnly" in cookie
        assert "SameSite=lax" in cookie and "Secure" not in cookie  # plain http here
        page = c.get("/tools/back-office/book")
        assert page.status_code == 200 and 'href="/tools/back-office/book/_new"' in page.text
        # a bearer header is not a way in: the admin is a cookie session
        c.cookies.clear()
        token = auth.issue("ann")
        bearer = c.get(
            "/tools/back-office/book",
            headers={"authorization": f"Bearer {token}"},
            follow_redirects=False,
        )
        assert bearer.status_code == 303
        expired = auth.issue("ann", expires_in=dt.timedelta(seconds=-5))
        c.cookies.set("persisty_admin", expired, path="/tools/back-office")
        again = c.get("/tools/back-office/book", follow_redirects=False)
        assert again.status_code == 303 and "/login" in again.headers["location"]


def test_an_admin_without_a_login_says_so(tmp_path: Path) -> None:
    from persisty.serve import JWTAuth

    db = persisty.aio.connect(f"sqlite:///{tmp_path}/nologin.db")
    site = Starlette(routes=admin(db, [Book], auth=JWTAuth(secret="s" * 40)).routes)
    with TestClient(site, base_url="http://testserver") as c:
        page = c.get("/admin/", follow_redirects=True)
        assert "has no sign-in" in page.text and 'name="password"' not in page.text
