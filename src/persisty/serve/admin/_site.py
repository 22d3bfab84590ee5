"""What every admin page shares: the API's machinery (stores under the caller's policy), the
templates, the security headers, the session cookie turned into the API's bearer token, CSRF
tokens and the ``Origin`` check, the viewer's time zone and the flash message."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import time
import zoneinfo
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from persisty.errors import Forbidden, NotFound, PersistyError, Unauthorized
from persisty.query import NONE
from persisty.serve._api import Api, Served
from persisty.serve._graphql_relations import RelationGraph, relation_graph
from persisty.serve._limits import read_body

HERE = Path(__file__).resolve().parent
STATIC = HERE / "static"
TEMPLATES = HERE / "templates"

SESSION_COOKIE = "persisty_admin"
CSRF_COOKIE = "persisty_admin_csrf"
THEME_COOKIE = "persisty_admin_theme"
TZ_COOKIE = "persisty_admin_tz"
FLASH_COOKIE = "persisty_admin_flash"
CSRF_FIELD = "csrf_token"
MAX_FORM_FIELDS = 2000

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "object-src 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
_ZONE = re.compile(r"^[A-Za-z][A-Za-z0-9_+\-/]{0,63}$")


def asset_version() -> str:
    """A digest of the shipped assets: their URLs change when they do (so caching is safe)."""
    h = hashlib.sha256()
    for path in sorted(STATIC.iterdir()):
        if path.is_file():
            h.update(path.name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:12]


class LoginRequired(Exception):
    """Internal: the page needs a signed-in principal; redirect to the sign-in page."""


class CsrfFailure(Forbidden):
    """A state-changing request without a valid CSRF token or from another origin."""

    code = "csrf_failed"


@dataclass(eq=False)
class Site:
    """The admin's configuration and helpers (one per mounted admin)."""

    api: Api
    title: str
    env: jinja2.Environment
    assets: str
    graph: RelationGraph

    @classmethod
    def make(cls, api: Api, title: str) -> Site:
        env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(TEMPLATES),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        env.filters["thousands"] = lambda n: f"{n:,}"
        return cls(api, title, env, asset_version(), relation_graph(api.served, api.links))

    # ---- requests ---------------------------------------------------------------------

    @staticmethod
    def base(request: Request) -> str:
        """The admin's URL path (where it is mounted)."""
        return str(request.scope.get("root_path", "")).rstrip("/")

    @staticmethod
    def origin(request: Request) -> str:
        return f"{request.url.scheme}://{request.headers.get('host', request.url.netloc)}"

    def link(self, request: Request, store: str, key: str) -> str:
        """The detail page of ``store``'s item ``key``."""
        return f"{self.base(request)}/{store}/{quote(key, safe='')}"

    def served(self, name: str) -> Served:
        found = self.api.served.get(name)
        if found is None:
            raise NotFound(f"no store named {name!r}")
        return found

    def principal(self, request: Request) -> Any:
        """The signed-in principal (``None`` for an admin without auth)."""
        if self.api.auth is None:
            return None
        if "authorization" not in request.headers:
            raise LoginRequired
        try:
            return self.api.principal(request, None)
        except Unauthorized:
            raise LoginRequired from None

    def store(self, request: Request, served: Served) -> Any:
        """``served``'s store as the caller may use it (the REST API's view of it)."""
        self.principal(request)
        return self.api.store(request, served)

    @staticmethod
    def rules(store: Any) -> Any:
        """The access-control rules over ``store`` (``None``: no policy applies)."""
        while store is not None:
            rules = getattr(store, "rules", None)
            if rules is not None and hasattr(rules, "read"):
                return rules
            store = getattr(store, "inner", None)
        return None

    def can(self, store: Any, action: str) -> bool:
        rules = self.rules(store)
        return rules is None or getattr(rules, action) is not NONE

    def readable(self, store: Any, served: Served) -> list[Any]:
        """The attributes the caller may read, in declaration order."""
        rules = self.rules(store)
        names = None if rules is None else rules.readable
        return [
            a
            for a in served.meta.attrs
            if a.readable and a.name not in served.hidden and (names is None or a.name in names)
        ]

    def writable(self, store: Any, name: str) -> bool:
        rules = self.rules(store)
        return rules is None or rules.writable is None or name in rules.writable

    def forced(self, store: Any) -> Mapping[str, Any]:
        rules = self.rules(store)
        return {} if rules is None else dict(rules.forced)

    # ---- time zone ----------------------------------------------------------------------

    @staticmethod
    def zone_named(name: str | None) -> zoneinfo.ZoneInfo:
        if name and _ZONE.match(name) and ".." not in name:
            try:
                return zoneinfo.ZoneInfo(name)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
                pass
        return zoneinfo.ZoneInfo("UTC")

    def zone(self, request: Request) -> zoneinfo.ZoneInfo:
        """The viewer's time zone (the browser reports it in a cookie; UTC without one)."""
        return self.zone_named(unquote(request.cookies.get(TZ_COOKIE) or ""))

    # ---- CSRF -----------------------------------------------------------------------------

    def csrf_token(self, request: Request) -> str:
        nonce = request.scope.get("persisty.csrf_nonce") or request.cookies.get(CSRF_COOKIE)
        if not nonce:
            nonce = secrets.token_urlsafe(32)
            request.scope["persisty.csrf_nonce"] = nonce
            request.scope["persisty.csrf_new"] = True
        digest = self.api.db.pages.mac("admin-csrf", nonce.encode())
        return base64.urlsafe_b64encode(digest[:24]).decode()

    async def form(self, request: Request) -> dict[str, list[str]]:
        """The posted form, after the CSRF token and the ``Origin`` are checked (403 else)."""
        self.check_origin(request)
        body = await read_body(request, self.api.limits)
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype not in ("application/x-www-form-urlencoded", ""):
            raise CsrfFailure("send the form as application/x-www-form-urlencoded")
        try:
            pairs = parse_qsl(
                body.decode("utf-8"),
                keep_blank_values=True,
                max_num_fields=MAX_FORM_FIELDS,
                strict_parsing=False,
            )
        except (UnicodeDecodeError, ValueError):
            raise CsrfFailure("the form could not be read") from None
        data: dict[str, list[str]] = {}
        for k, v in pairs:
            data.setdefault(k, []).append(v)
        sent = (data.get(CSRF_FIELD) or [""])[-1]
        if not request.cookies.get(CSRF_COOKIE) or not hmac.compare_digest(
            sent.encode(), self.csrf_token(request).encode()
        ):
            raise CsrfFailure(
                "the form's security token is missing or out of date: reload the page and try again"
            )
        return data

    def check_origin(self, request: Request) -> None:
        mine = self.origin(request)
        origin = request.headers.get("origin")
        if origin is not None:
            if origin != mine:
                raise CsrfFailure("the request came from another origin")
            return
        referer = request.headers.get("referer")
        if referer is None or not (referer == mine or referer.startswith(mine + "/")):
            raise CsrfFailure("the request names no origin of this site")

    # ---- responses ----------------------------------------------------------------------

    def render(
        self, request: Request, template: str, status: int = 200, **context: Any
    ) -> HTMLResponse:
        base = self.base(request)
        try:
            user = self.principal(request)
        except LoginRequired:
            user = None
        zone = self.zone(request)
        flash = unquote(request.cookies.get(FLASH_COOKIE) or "") or None
        page = self.env.get_template(template).render(
            base=base,
            static=f"{base}/_static/{self.assets}",
            title=self.title,
            user=user,
            auth=self.api.auth is not None,
            csrf=self.csrf_token(request),
            theme=request.cookies.get(THEME_COOKIE)
            if request.cookies.get(THEME_COOKIE) in ("light", "dark")
            else None,
            zone=zone.key,
            flash=flash[:300] if flash else None,
            here=_here(request),
            **context,
        )
        response = HTMLResponse(page, status_code=status)
        if flash:
            response.delete_cookie(FLASH_COOKIE, path=base or "/")
        return response

    def redirect(self, request: Request, url: str, flash: str | None = None) -> Response:
        response = RedirectResponse(url, status_code=303)
        if flash:
            response.set_cookie(
                FLASH_COOKIE,
                quote(flash[:300], safe=""),
                path=self.base(request) or "/",
                httponly=True,
                samesite="lax",
                secure=request.url.scheme == "https",
            )
        return response

    def finish(self, request: Request, response: Response, started: float) -> Response:
        for k, v in SECURITY_HEADERS.items():
            response.headers.setdefault(k, v)
        if request.scope.get("persisty.csrf_new"):
            response.set_cookie(
                CSRF_COOKIE,
                request.scope["persisty.csrf_nonce"],
                path=self.base(request) or "/",
                httponly=True,
                samesite="lax",
                secure=request.url.scheme == "https",
            )
        response.headers["Server-Timing"] = f"app;dur={(time.perf_counter() - started) * 1e3:.1f}"
        return response

    def error_page(self, request: Request, e: PersistyError) -> Response:
        return self.render(request, "error.html", status=e.status, error=e)

    def login_redirect(self, request: Request) -> Response:
        target = _here(request)
        response = RedirectResponse(
            f"{self.base(request)}/login?next={quote(target, safe='')}", status_code=303
        )
        if request.cookies.get(SESSION_COOKIE):
            response.delete_cookie(SESSION_COOKIE, path=self.base(request) or "/")
        return response


def _here(request: Request) -> str:
    """The request's own path and query (a same-origin relative URL)."""
    path = request.url.path
    return path + ("?" + request.url.query if request.url.query else "")


def safe_next(value: str | None, base: str) -> str:
    """``value`` when it is a same-origin relative path, else the admin's index."""
    fallback = (base or "") + "/"
    if not value or len(value) > 2000 or not value.startswith("/") or value.startswith("//"):
        return fallback
    if "\\" in value or any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        return fallback
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return fallback
    return value


Page = Callable[[Site, Request], Awaitable[Response]]


def page(site: Site, fn: Page) -> Callable[[Request], Awaitable[Response]]:
    """An endpoint running ``fn``: sign-in gate, HTML error pages, security headers."""

    async def endpoint(request: Request) -> Response:
        started = time.perf_counter()
        try:
            response = await fn(site, request)
        except LoginRequired:
            response = site.login_redirect(request)
        except PersistyError as e:
            if isinstance(e, Unauthorized):
                response = site.login_redirect(request)
            else:
                response = site.error_page(request, e)
        return site.finish(request, response, started)

    endpoint.__name__ = fn.__name__
    return endpoint


class SessionCookieAuth:
    """ASGI wrapper: the session cookie's JWT becomes the request's bearer token, so the API's
    own authentication, policies and errors apply unchanged; a client's own
    ``Authorization`` header is not accepted here (the admin is a cookie session)."""

    def __init__(self, app: ASGIApp, enabled: bool) -> None:
        self.app = app
        self.enabled = enabled

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = [(k, v) for k, v in scope.get("headers", []) if k != b"authorization"]
            if self.enabled:
                token = Request(scope).cookies.get(SESSION_COOKIE)
                if token and len(token) < 8192:
                    headers.append(
                        (b"authorization", b"Bearer " + token.encode("latin-1", "replace"))
                    )
            scope = dict(scope)
            scope["headers"] = headers
        await self.app(scope, receive, send)
