"""Signing in and out (an HttpOnly, SameSite=Lax cookie carrying the API's JWT) and the
remembered colour theme."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from persisty.errors import NotFound, Unauthorized
from persisty.serve.admin._site import SESSION_COOKIE, THEME_COOKIE, Site, safe_next

MAX_CREDENTIAL = 1000


async def login_page(site: Site, request: Request) -> Response:
    base = site.base(request)
    nxt = safe_next(request.query_params.get("next"), base)
    if request.method == "GET":
        return site.render(
            request,
            "login.html",
            next=nxt,
            username="",
            error=None,
            can_sign_in=site.api.login is not None,
        )
    if site.api.login is None or site.api.auth is None:
        raise NotFound("this admin has no sign-in")
    form = await site.form(request)
    nxt = safe_next((form.get("next") or [""])[-1], base)
    username = (form.get("username") or [""])[-1][:MAX_CREDENTIAL]
    password = (form.get("password") or [""])[-1][:MAX_CREDENTIAL]
    try:
        if not username:
            raise Unauthorized("enter your user name")
        scopes = site.api.login.authenticate(username, password)
    except Unauthorized as e:
        return site.render(
            request,
            "login.html",
            status=401,
            next=nxt,
            username=username,
            error=str(e),
            can_sign_in=True,
        )
    token = site.api.auth.issue(username, scopes)
    response = site.redirect(request, nxt)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        path=base or "/",
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        max_age=int(site.api.auth.expires_in.total_seconds()),
    )
    return response


async def logout(site: Site, request: Request) -> Response:
    await site.form(request)
    base = site.base(request)
    response = site.redirect(request, f"{base}/login", "Signed out.")
    response.delete_cookie(SESSION_COOKIE, path=base or "/", httponly=True, samesite="lax")
    return response


async def theme(site: Site, request: Request) -> Response:
    """Remembers light or dark (works without JavaScript; the script posts it too)."""
    form = await site.form(request)
    chosen = (form.get("theme") or [""])[-1]
    if chosen not in ("light", "dark"):
        chosen = "light" if request.cookies.get(THEME_COOKIE) == "dark" else "dark"
    base = site.base(request)
    response = site.redirect(request, safe_next((form.get("next") or [""])[-1], base))
    response.set_cookie(
        THEME_COOKIE,
        chosen,
        path=base or "/",
        httponly=False,
        samesite="lax",
        secure=request.url.scheme == "https",
        max_age=365 * 24 * 3600,
    )
    return response
