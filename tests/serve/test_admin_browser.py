"""The admin UI in a real browser: headless Debian Chromium driven by playwright, the
messenger example plus a store with every attribute kind (250 items) and 5,000 channels,
served by uvicorn on a free loopback port; a fresh browser context per test records every
request (any to another origin is aborted), console error and CSP violation."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit
from uuid import UUID

import pytest
from examples.messenger.app import Channel, Message, User
from tests.serve.admin_support import (
    ARTIFACTS,
    GADGETS,
    POLICY,
    STORES,
    Color,
    Gadget,
    Server,
    Tab,
    gadget,
    launch,
    open_tab,
    seed_all,
    serve,
    wait_for,
)

from persisty.query import F, TextQuery


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    url = f"sqlite:///{tmp_path_factory.mktemp('admin') / 'admin.db'}"
    yield from serve(
        url, stores=STORES, policies=POLICY, on_startup=seed_all, anonymous=[User, Channel]
    )


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    yield from launch()


@pytest.fixture
def tab(browser: Any, server: Server) -> Iterator[Tab]:
    t = open_tab(browser, server.origin)
    yield t
    assert t.foreign == [], t.foreign
    t.context.close()


def _no_js(browser: Any, server: Server) -> Tab:
    return open_tab(browser, server.origin, java_script_enabled=False)


# ---- sign-in ------------------------------------------------------------------------------


def test_sign_in_gate_wrong_password_cookie_flags_and_foreign_next(tab: Tab) -> None:
    page = tab.page
    tab.go("/admin/message?owner=ann")
    assert urlsplit(page.url).path == "/admin/login"
    assert parse_qs(urlsplit(page.url).query)["next"] == ["/admin/message?owner=ann"]
    page.fill("#username", "ann")
    page.fill("#password", "wrong")
    with page.expect_navigation() as nav:
        page.click("button:has-text('Sign in')")
    assert nav.value.status == 401
    assert "wrong password" in page.locator("#login-error").inner_text()
    assert page.input_value("#username") == "ann"  # what was typed is kept
    assert not [c for c in tab.context.cookies() if c["name"] == "persisty_admin"]
    page.fill("#password", "ann")
    with page.expect_navigation():
        page.click("button:has-text('Sign in')")
    assert page.url == tab.origin + "/admin/message?owner=ann"
    (session,) = [c for c in tab.context.cookies() if c["name"] == "persisty_admin"]
    assert session["httpOnly"] is True and session["sameSite"] == "Lax"
    assert session["path"] == "/admin"
    assert page.evaluate("document.cookie").find("persisty_admin=") == -1  # not readable
    # sign out, then a `next` pointing elsewhere lands on the admin itself
    with page.expect_navigation():
        page.click("button:has-text('Sign out')")
    assert not [c for c in tab.context.cookies() if c["name"] == "persisty_admin"]
    for evil in ("https://elsewhere/", "//elsewhere/x", "/\\elsewhere", "javascript:alert(1)"):
        tab.go("/admin/login?next=" + evil.replace("/", "%2F"))
        page.fill("#username", "ann")
        page.fill("#password", "ann")
        with page.expect_navigation():
            page.click("button:has-text('Sign in')")
        assert page.url == tab.origin + "/admin/", (evil, page.url)
        with page.expect_navigation():
            page.click("button:has-text('Sign out')")
    assert {urlsplit(u).hostname for u in tab.requests} == {"127.0.0.1"}


def test_the_index_shows_only_the_stores_a_principal_may_read(
    tab: Tab, browser: Any, server: Server
) -> None:
    tab.sign_in("ann")
    names = tab.page.locator("a.store-link").all_inner_texts()
    assert names == ["user", "channel", "message", "gadget"]
    assert tab.go("/admin/audit_entry").status == 403
    root = open_tab(browser, server.origin)
    root.sign_in("root")
    assert root.page.locator("a.store-link").all_inner_texts() == [
        "user",
        "channel",
        "message",
        "gadget",
        "audit_entry",
    ]
    # ann may read channels but not create them: no "New" link on her index for it
    assert tab.go("/admin/").ok
    assert tab.page.locator("a.button[href='/admin/channel/_new']").count() == 0
    assert root.page.locator("a.button[href='/admin/channel/_new']").count() == 1
    root.context.close()


# ---- list pages -----------------------------------------------------------------------------


def test_keyset_paging_every_key_once_reload_stable_and_inserts_repeat_nothing(
    tab: Tab, server: Server
) -> None:
    store = server.store(Gadget)
    expected = [store.key_of(g) for g in store.search_all(F.id.startswith("g-"), "id")]
    assert len(expected) >= GADGETS
    tab.sign_in("root")
    tab.go("/admin/gadget?id__startswith=g-&order=id")
    seen: list[str] = []
    shown: list[list[str]] = []
    inserted: list[str] = []
    while True:
        keys = tab.keys()
        assert len(keys) <= 20
        seen += keys
        shown.append(keys)
        pages = len(shown)
        if pages == 2:  # reloading a page URL shows the same rows
            tab.page.reload()
            assert tab.keys() == keys
        if pages == 3:  # 10 inserts between clicks: 5 before this page, 5 after it
            last = keys[-1]
            before = [f"g-0000-{i}" for i in range(5)]
            after = [f"{last}-{i}" for i in range(5)]
            for k in before + after:
                store.create(gadget(0, id=k, name="inserted"))
            inserted = after
        nxt = tab.page.locator("a[rel=next]")
        if nxt.count() == 0:
            break
        with tab.page.expect_navigation():
            nxt.click()
    assert len(seen) == len(set(seen)), "a key was shown twice"
    # every original key once, and of the inserts exactly those after the position
    assert seen == sorted(expected + inserted)
    # Previous walks back through the same pages
    with tab.page.expect_navigation():
        tab.page.locator("a[rel=prev]").click()
    assert tab.keys() == shown[-2]
    with tab.page.expect_navigation():
        tab.page.locator("a[rel=prev]").click()
    assert tab.keys() == shown[-3]
    for k in [f"g-0000-{i}" for i in range(5)] + inserted:
        store.delete(k)


def _count_text(tab: Tab) -> str:
    text: str = tab.page.locator("#count").inner_text()
    return text.split()[0]


def test_sort_headers_filter_panel_and_search_equal_the_store(tab: Tab, server: Server) -> None:
    store = server.store(Gadget)
    tab.sign_in("root")
    tab.go("/admin/gadget")
    with tab.page.expect_navigation():
        tab.page.click("a.sort[data-sort=count]")
    assert parse_qs(urlsplit(tab.page.url).query)["order"] == ["count"]
    assert tab.keys() == [store.key_of(g) for g in store.search(None, "count", 20).items]
    assert tab.page.locator("th[aria-sort=ascending]").inner_text().startswith("count")
    with tab.page.expect_navigation():
        tab.page.click("a.sort[data-sort=count]")
    assert tab.keys() == [store.key_of(g) for g in store.search(None, "-count", 20).items]
    # columns without a sort header cannot be sorted by hand either: 422, never a 500
    bad = tab.go("/admin/gadget?order=notes")
    assert bad.status == 422 and "cannot sort by 'notes'" in tab.page.inner_text("#list-error")
    assert tab.go("/admin/gadget?order=nope,-").status == 422
    assert tab.go("/admin/gadget?count__gte=many").status == 422
    # the filter panel
    tab.go("/admin/gadget?order=-price")
    tab.page.click("details.filters summary")
    tab.page.fill("#f-count__gte", "100")
    tab.page.fill("#f-count__lte", "300")
    tab.page.select_option("#f-color", "green")
    tab.page.select_option("#f-checked__exists", "true")
    tab.page.fill("#f-name__icontains", "gadget 1")
    with tab.page.expect_navigation():
        tab.page.click("button:has-text('Apply filters')")
    query = parse_qs(urlsplit(tab.page.url).query)
    assert query == {
        "order": ["-price"],
        "count__gte": ["100"],
        "count__lte": ["300"],
        "color": ["green"],
        "checked__exists": ["true"],
        "name__icontains": ["gadget 1"],
    }  # empty fields are not in the URL
    f = (
        (F.count >= 100)
        & (F.count <= 300)
        & (F.color == "green")
        & F.checked.exists()
        & F.name.icontains("gadget 1")
    )
    assert tab.keys() == [store.key_of(g) for g in store.search(f, "-price", 20).items]
    assert _count_text(tab) == f"{store.count(f):,}"
    # free-text search
    tab.go("/admin/gadget")
    tab.page.fill("#q", "note 1")
    with tab.page.expect_navigation():
        tab.page.click("button:has-text('Search')")
    expected = store.search(TextQuery("note 1"), None, 20).items
    assert expected and tab.keys() == [store.key_of(g) for g in expected]
    assert _count_text(tab) == f"{store.count(TextQuery('note 1')):,}"
    # the count is capped at 1,000
    tab.go("/admin/channel")
    assert tab.page.locator("#count").inner_text().startswith("1,000+")


# ---- forms ----------------------------------------------------------------------------------


def test_a_create_with_two_invalid_fields_keeps_every_value_and_writes_nothing(
    tab: Tab, server: Server
) -> None:
    store = server.store(Gadget)
    before = store.count()
    tab.sign_in("root")
    page = tab.page
    tab.go("/admin/gadget/_new")
    typed = {
        "#field-id": "Bad Id!",
        "#field-name": "A name",
        "#field-count": "42",
        "#field-price": "1.5",
        "#field-cost": "9.99",
        "#field-tags": "a\nb",
        "#field-specs": "{not json",
        "#field-notes": "some notes",
    }
    page.evaluate("document.querySelector('#field-id').removeAttribute('pattern')")
    for sel, text in typed.items():
        page.fill(sel, text)
    page.check("#field-active")
    page.select_option("#field-color", "blue")
    with page.expect_navigation() as nav:
        page.click("button:has-text('Create')")
    assert nav.value.status == 422
    for sel, text in typed.items():
        assert page.input_value(sel) == text, sel
    assert page.is_checked("#field-active")
    assert page.input_value("#field-color") == "blue"
    invalid = page.locator("[aria-invalid=true]").evaluate_all("e => e.map(x => x.id)")
    assert invalid == ["field-id", "field-specs"]
    assert page.get_attribute("#field-id", "aria-describedby").startswith("field-id-error")
    assert page.evaluate("document.activeElement.id") == "field-id"
    assert "not valid JSON" in page.inner_text("#field-specs-error")
    assert store.count() == before
    # a maxlength removed in the DOM is refused by the server all the same
    page.fill("#field-id", "long-name")
    page.fill("#field-specs", "{}")
    page.evaluate("document.querySelector('#field-name').removeAttribute('maxlength')")
    page.fill("#field-name", "x" * 61)
    with page.expect_navigation() as nav:
        page.click("button:has-text('Create')")
    assert nav.value.status == 422
    assert page.input_value("#field-name") == "x" * 61
    assert "length <= 60" in page.inner_text("#field-name-error")
    assert store.read("long-name") is None and store.count() == before


def test_every_attribute_kind_round_trips_with_a_new_york_datetime(
    browser: Any, server: Server
) -> None:
    tab = open_tab(browser, server.origin, timezone_id="America/New_York")
    tab.sign_in("root")
    page = tab.page
    tab.go("/admin/gadget/_new")
    assert page.locator("html").get_attribute("data-tz") == "America/New_York"
    ref = "12345678-1234-5678-1234-567812345678"
    page.fill("#field-id", "kinds")
    page.fill("#field-name", "Every kind")
    page.fill("#field-owner", "bob")
    page.fill("#field-count", "7")
    page.fill("#field-price", "2.25")
    page.fill("#field-cost", "10.05")
    page.check("#field-active")
    page.select_option("#field-checked", "false")
    page.fill("#field-released", "2024-02-29")
    page.fill("#field-seen_at", "2024-07-04T12:30:15")
    page.select_option("#field-color", "green")
    page.fill("#field-ref", ref)
    page.fill("#field-tags", "red\nsmall\n")
    page.fill("#field-specs", '{"w": 3, "deep": {"x": [1, 2]}}')
    page.fill("#field-blob", "aGVsbG8=")
    page.fill("#field-notes", "line one\nline two")
    with page.expect_navigation() as nav:
        page.click("button:has-text('Create')")
    assert nav.value.status == 200 and page.url.endswith("/admin/gadget/kinds")
    item = server.store(Gadget).read("kinds")
    assert item == Gadget(
        id="kinds",
        name="Every kind",
        owner="bob",
        count=7,
        price=2.25,
        cost=Decimal("10.05"),
        active=True,
        checked=False,
        released=dt.date(2024, 2, 29),
        seen_at=dt.datetime(2024, 7, 4, 16, 30, 15, tzinfo=dt.UTC),  # EDT is UTC-4
        color=Color.GREEN,
        ref=UUID(ref),
        tags=["red", "small"],
        specs={"w": 3, "deep": {"x": [1, 2]}},
        blob=b"hello",
        notes="line one\nline two",
        created_at=item.created_at,
    )
    assert "2024-07-04 12:30:15 EDT" in page.inner_text("dl.fields")
    # the edit form shows the same values, and saving it unchanged changes nothing
    tab.go("/admin/gadget/kinds/_edit")
    assert page.input_value("#field-seen_at") == "2024-07-04T12:30:15"
    assert page.input_value("#field-tags") == "red\nsmall"
    assert page.get_attribute("#field-id", "readonly") is not None
    with page.expect_navigation():
        page.click("button:has-text('Save')")
    again = server.store(Gadget).read("kinds")
    assert again == item
    assert tab.errors == [] and tab.csp() == [] and tab.foreign == []
    server.store(Gadget).delete("kinds")
    tab.context.close()


def test_two_tabs_editing_one_item_the_second_save_gets_412(tab: Tab, server: Server) -> None:
    store = server.store(Gadget)
    store.create(gadget(900, id="twice", name="original"))
    tab.sign_in("root")
    first, second = tab.page, tab.new_page()
    for p in (first, second):
        p.goto(tab.origin + "/admin/gadget/twice/_edit")
    first.fill("#field-name", "first change")
    with first.expect_navigation():
        first.click("button:has-text('Save')")
    second.fill("#field-name", "second change")
    second.fill("#field-count", "5")
    with second.expect_navigation() as nav:
        second.click("button:has-text('Save')")
    assert nav.value.status == 412
    assert "changed since you opened it" in second.inner_text("#form-error")
    assert second.input_value("#field-name") == "second change"  # the user's input stays
    assert "first change" in second.inner_text("[data-field=name] .current")
    assert store.read("twice").name == "first change" and store.read("twice").count != 5
    # saving again now replaces it deliberately
    with second.expect_navigation():
        second.click("button:has-text('Save anyway')")
    assert store.read("twice").name == "second change"
    store.delete("twice")


# ---- delete -----------------------------------------------------------------------------------


def _channel_with_messages(server: Server, cid: str, n: int) -> None:
    server.store(Channel).create(Channel(id=cid, title=cid))
    for i in range(n):
        server.store(Message).create(Message(channel_id=cid, owner="ann", text=f"m{i}"))


def test_delete_with_the_cascade_summary_in_a_dialog(tab: Tab, server: Server) -> None:
    _channel_with_messages(server, "doomed-js", 12)
    tab.sign_in("root")
    tab.go("/admin/channel/doomed-js")
    assert "12 message" in tab.page.inner_text("ul.related")
    tab.page.click("a:has-text('Delete…')")
    dialog = tab.page.locator("#delete-dialog")
    assert dialog.is_visible() and "also deletes 12 messages" in dialog.inner_text()
    assert urlsplit(tab.page.url).path == "/admin/channel/doomed-js"  # no page change
    with tab.page.expect_navigation():
        dialog.locator("button:has-text('Delete')").click()
    assert urlsplit(tab.page.url).path == "/admin/channel"
    assert "Deleted channel doomed-js" in tab.page.inner_text(".flash")
    assert server.store(Channel).read("doomed-js") is None
    assert server.store(Message).count(F.channel_id == "doomed-js") == 0
    assert tab.errors == [] and tab.csp() == []


def test_delete_blocked_and_cascading_without_javascript(browser: Any, server: Server) -> None:
    _channel_with_messages(server, "doomed-nojs", 3)
    tab = _no_js(browser, server)
    tab.sign_in("root")
    tab.go("/admin/channel/doomed-nojs")
    with tab.page.expect_navigation():
        tab.page.click("a:has-text('Delete…')")
    assert urlsplit(tab.page.url).path == "/admin/channel/doomed-nojs/_delete"
    assert "also deletes 3 messages" in tab.page.inner_text("ul.effects")
    with tab.page.expect_navigation():
        tab.page.click("button:has-text('Delete')")
    assert server.store(Channel).read("doomed-nojs") is None
    assert server.store(Message).count(F.channel_id == "doomed-nojs") == 0
    tab.context.close()


def test_bulk_delete_with_a_key_of_another_owner(tab: Tab, server: Server) -> None:
    store = server.store(Gadget)
    for k, owner in (("bulk-a", "ann"), ("bulk-b", "ann"), ("bulk-c", "bob")):
        store.create(gadget(1, id=k, owner=owner, name="bulk"))
    tab.sign_in("ann")
    tab.go("/admin/gadget?name=bulk")
    assert tab.keys() == ["bulk-a", "bulk-b"]  # bob's is not even listed for ann
    tab.page.check("[data-select-all]")
    # a forged selection: bob's key added to the form
    tab.page.evaluate("""() => { const i = document.createElement('input');
        i.type = 'checkbox'; i.name = 'key'; i.value = 'bulk-c'; i.checked = true;
        document.querySelector('#bulk').appendChild(i); }""")
    tab.page.click("button[data-bulk-delete]")
    assert tab.page.locator("#bulk-dialog").is_visible()
    with tab.page.expect_navigation():
        tab.page.click("[data-bulk-confirm]")
    assert tab.page.inner_text(".flash") == "2 deleted, 1 not found"
    assert store.read("bulk-a") is None and store.read("bulk-b") is None
    assert store.read("bulk-c") is not None
    store.delete("bulk-c")


def test_a_post_without_the_csrf_token_or_from_another_origin_is_refused(
    tab: Tab, server: Server
) -> None:
    tab.sign_in("root")
    tab.go("/admin/channel/_new")
    token = tab.page.input_value("input[name=csrf_token]")
    form = {"id": "csrf-x", "title": "x", "topic": ""}
    status = tab.page.evaluate(
        """async (form) => (await fetch('/admin/channel/_new', {
        method: 'POST', body: new URLSearchParams(form)})).status""",
        form,
    )
    assert status == 403
    other = tab.context.request.post(
        tab.origin + "/admin/channel/_new",
        form={**form, "csrf_token": token},
        headers={"Origin": "http://evil.example"},
        max_redirects=0,
    )
    assert other.status == 403 and "another origin" in other.text()
    wrong = tab.context.request.post(
        tab.origin + "/admin/channel/_new",
        form={**form, "csrf_token": token[::-1]},
        headers={"Origin": tab.origin},
        max_redirects=0,
    )
    assert wrong.status == 403
    assert server.store(Channel).read("csrf-x") is None
    ok = tab.context.request.post(
        tab.origin + "/admin/channel/_new",
        form={**form, "csrf_token": token},
        headers={"Origin": tab.origin},
        max_redirects=0,
    )
    assert ok.status == 303 and server.store(Channel).read("csrf-x") is not None
    server.store(Channel).delete("csrf-x")


# ---- export -------------------------------------------------------------------------------------


def test_export_of_a_filtered_list_has_exactly_count_rows(tab: Tab, server: Server) -> None:
    store = server.store(Gadget)
    store.create(gadget(3, id="formula", name='=HYPERLINK("x")', notes="-2+3", color=Color.BLUE))
    tab.sign_in("root")
    tab.go("/admin/gadget?color=blue&count__lte=400")
    f = (F.color == "blue") & (F.count <= 400)
    with tab.page.expect_download() as dl:
        tab.page.click("a:has-text('Export CSV')")
    rows = list(csv.DictReader(io.StringIO(Path(dl.value.path()).read_text())))
    assert len(rows) == store.count(f) > 20  # every page, not just the one on screen
    by_id = {r["id"]: r for r in rows}
    assert by_id["formula"]["name"] == '\'=HYPERLINK("x")' and by_id["formula"]["notes"] == "'-2+3"
    with tab.page.expect_download() as dl:
        tab.page.click("a:has-text('Export JSON Lines')")
    lines = Path(dl.value.path()).read_text().splitlines()
    assert len(lines) == store.count(f)
    assert {json.loads(x)["id"] for x in lines} == {g.id for g in store.search_all(f)}
    store.delete("formula")


# ---- the whole tour ---------------------------------------------------------------------------


def test_a_full_tour_stays_on_the_origin_without_console_errors_or_csp_violations(
    tab: Tab, server: Server
) -> None:
    page = tab.page
    tab.sign_in("root")
    for path in (
        "/admin/",
        "/admin/user",
        "/admin/channel",
        "/admin/message",
        "/admin/gadget",
        "/admin/gadget?order=-count&limit=50",
        "/admin/gadget/g-0001",
        "/admin/gadget/g-0001/_edit",
        "/admin/gadget/_new",
        "/admin/channel/general",
        "/admin/channel/general/_delete",
        "/admin/audit_entry",
    ):
        response = tab.go(path)
        assert response.status == 200, (path, response.status)
        assert "default-src 'self'" in response.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    # the dialog, select-all and the theme toggle
    tab.go("/admin/channel/general")
    page.click("a:has-text('Delete…')")
    page.click("#delete-dialog button:has-text('Cancel')")
    tab.go("/admin/gadget")
    page.check("[data-select-all]")
    assert all(page.locator("input[name=key]").evaluate_all("e => e.map(x => x.checked)"))
    page.click("button:has-text('Theme')")
    # the relation picker asks the server for at most 20 suggestions as one types
    tab.go("/admin/message/_new")
    assert page.locator("select#field-channel_id").count() == 0
    page.locator("#field-channel_id").press_sequentially("chan-01", delay=20)
    wait_for(lambda: page.locator("#field-channel_id-list option").count() == 20)
    options = page.locator("#field-channel_id-list option").evaluate_all("o => o.map(x => x.value)")
    assert all(o.startswith("chan-01") for o in options)
    suggests = [u for u in tab.requests if "/_suggest" in u]
    assert suggests and all("q=" in u for u in suggests)
    assert len(page.content()) < 50_000  # never a list of all 5,000 channels
    assert tab.errors == [], tab.errors
    assert tab.csp() == []
    assert tab.foreign == []
    assert all(u.startswith(tab.origin + "/") for u in tab.requests)
    for path in ("/admin/nowhere", "/admin/gadget/missing", "/admin/nowhere/x/y"):
        response = tab.go(path)
        assert (
            response.status == 404
            and "default-src 'self'" in response.headers["content-security-policy"]
        )


# ---- without JavaScript ------------------------------------------------------------------------


def test_without_javascript_paging_filtering_create_stale_edit_and_delete(
    browser: Any, server: Server
) -> None:
    tab = _no_js(browser, server)
    page = tab.page
    store = server.store(Gadget)
    tab.sign_in("root")
    tab.go("/admin/gadget?id__startswith=g-0")
    first = tab.keys()
    with page.expect_navigation():
        page.click("a[rel=next]")
    second = tab.keys()
    assert first and second and not set(first) & set(second)
    with page.expect_navigation():
        page.click("a[rel=prev]")
    assert tab.keys() == first
    if not page.locator("details.filters[open]").count():
        page.click("details.filters summary")
    page.select_option("#f-color", "blue")
    with page.expect_navigation():
        page.click("button:has-text('Apply filters')")
    f = F.id.startswith("g-0") & (F.color == "blue")
    assert tab.keys() == [g.id for g in store.search(f, None, 20).items]
    # create
    tab.go("/admin/gadget/_new")
    page.fill("#field-id", "nojs")
    page.fill("#field-name", "No script")
    page.fill("#field-seen_at", "2024-01-02T03:04:05")  # no script: the zone is UTC
    with page.expect_navigation():
        page.click("button:has-text('Create')")
    created = store.read("nojs")
    assert created.name == "No script"
    assert created.seen_at == dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    # stale edit
    tab.go("/admin/gadget/nojs/_edit")
    store.patch("nojs", {"name": "changed meanwhile"})
    page.fill("#field-name", "mine")
    with page.expect_navigation() as nav:
        page.click("button:has-text('Save')")
    assert nav.value.status == 412 and store.read("nojs").name == "changed meanwhile"
    # delete (the confirmation page instead of the dialog)
    tab.go("/admin/gadget/nojs")
    with page.expect_navigation():
        page.click("a:has-text('Delete…')")
    with page.expect_navigation():
        page.click("button:has-text('Delete')")
    assert store.read("nojs") is None
    # bulk delete asks on a page
    store.create(gadget(5, id="nojs-bulk", name="nojs bulk"))
    tab.go("/admin/gadget?name=nojs%20bulk")
    page.check("input[name=key][value=nojs-bulk]")
    with page.expect_navigation():
        page.click("button[data-bulk-delete]")
    with page.expect_navigation():
        page.click("button:has-text('Delete')")
    assert store.read("nojs-bulk") is None
    assert tab.foreign == []
    tab.context.close()


# ---- themes -------------------------------------------------------------------------------------


def _background(tab: Tab) -> str:
    return str(tab.page.evaluate("getComputedStyle(document.body).backgroundColor"))


def test_dark_mode_colours_the_toggle_and_screenshots(browser: Any, server: Server) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for scheme, background in (("light", "rgb(255, 255, 255)"), ("dark", "rgb(20, 23, 28)")):
        tab = open_tab(
            browser, server.origin, color_scheme=scheme, viewport={"width": 1280, "height": 800}
        )
        tab.sign_in("root")
        tab.go("/admin/gadget?order=-count")
        assert _background(tab) == background
        tab.page.screenshot(path=str(ARTIFACTS / f"list-{scheme}.png"))
        tab.go("/admin/gadget/g-0003/_edit")
        tab.page.screenshot(path=str(ARTIFACTS / f"form-{scheme}.png"), full_page=True)
        # the toggle switches at once and is remembered
        tab.page.click("button:has-text('Theme')")
        other = "rgb(20, 23, 28)" if scheme == "light" else "rgb(255, 255, 255)"
        assert _background(tab) == other

        def remembered(tab: Tab = tab) -> bool:
            return any(c["name"] == "persisty_admin_theme" for c in tab.context.cookies())

        wait_for(remembered)
        tab.page.reload()
        assert _background(tab) == other
        assert tab.errors == [] and tab.csp() == []
        tab.context.close()
    # narrow screens: the table scrolls sideways inside its frame, the page does not
    tab = open_tab(browser, server.origin, viewport={"width": 400, "height": 800})
    tab.sign_in("root")
    tab.go("/admin/gadget")
    wrap = tab.page.evaluate("""() => { const w = document.querySelector('.table-wrap');
        return [w.scrollWidth > w.clientWidth, document.documentElement.scrollWidth]; }""")
    assert wrap[0] is True and wrap[1] <= 400
    # keyboard: the first Tab reaches the skip link, then the header's links
    tab.page.keyboard.press("Tab")
    assert tab.page.evaluate("document.activeElement.className") == "skip"
    tab.context.close()
    for name in ("list-light", "list-dark", "form-light", "form-dark"):
        assert (ARTIFACTS / f"{name}.png").stat().st_size > 10_000


def test_anonymous_and_other_principals_see_what_rest_shows(tab: Tab, server: Server) -> None:
    """The same secured stores as REST: ann sees only her gadgets, and her messages' owner
    is forced by the policy."""
    store = server.store(Gadget)
    tab.sign_in("ann")
    tab.go("/admin/gadget?limit=200")
    assert tab.keys() == [g.id for g in store.search(F.owner == "ann", "id", 200).items]
    tab.go("/admin/gadget?owner=bob")
    assert tab.keys() == [] and tab.page.inner_text("#count").startswith("0 ")
    tab.go("/admin/message/_new")
    assert tab.page.locator("#field-owner").count() == 0  # forced by the policy
    tab.page.fill("#field-channel_id", "general")
    tab.page.fill("#field-text", "from the admin")
    with tab.page.expect_navigation():
        tab.page.click("button:has-text('Create')")
    (m,) = server.store(Message).search(F.text == "from the admin").items
    assert m.owner == "ann"
    # bob's gadget is missing for ann: 404, like REST
    assert tab.go("/admin/gadget/g-0001").status == 404
    server.store(Message).delete(str(m.id))
