"""An admin web UI generated from the stores' metadata, over the same secured stores as the
REST API (so every policy, relation rule, etag and error behaves the same).

Server-rendered pages and plain HTML forms (post, redirect, get) that work without
JavaScript; one small script that only enhances them (dialogs, type-ahead, select-all, the
theme toggle) and one stylesheet with light and dark themes, both shipped in the package and
served from the app's origin under a strict Content-Security-Policy.

Example::

    import persisty.aio
    from persisty.serve import app

    db = persisty.aio.connect("sqlite:///notes.db")
    asgi = app(db, [Note], admin=True)     # the API at /api, the admin at /admin
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route, Router
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from persisty.errors import NotFound
from persisty.serve import _rest  # noqa: F401 - registers the key convertor of the routes
from persisty.serve._api import Api
from persisty.serve._auth import DemoAuthenticator, JWTAuth
from persisty.serve._options import ServeOptions, serve_api
from persisty.serve.admin._items import create_page, delete_page, detail, edit_page
from persisty.serve.admin._pages import bulk, export_page, index, list_page, suggest
from persisty.serve.admin._session import login_page, logout, theme
from persisty.serve.admin._site import STATIC, SessionCookieAuth, Site, page

__all__ = ["admin", "admin_mount"]

LONG_CACHE = "public, max-age=31536000, immutable"


class _Assets(StaticFiles):
    def file_response(
        self, full_path: Any, stat_result: Any, scope: Scope, status_code: int = 200
    ) -> Any:
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers["Cache-Control"] = LONG_CACHE
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response


def _routes(site: Site) -> list[BaseRoute]:
    def r(path: str, fn: Any, methods: tuple[str, ...] = ("GET",)) -> Route:
        return Route(path, page(site, fn), methods=list(methods))

    get_post = ("GET", "POST")
    return [
        Mount(f"/_static/{site.assets}", app=_Assets(directory=STATIC), name="admin_static"),
        r("/", index),
        r("/login", login_page, get_post),
        r("/logout", logout, ("POST",)),
        r("/_theme", theme, ("POST",)),
        r("/{store}", list_page),
        r("/{store}/_new", create_page, get_post),
        r("/{store}/_bulk", bulk, ("POST",)),
        r("/{store}/_export", export_page),
        r("/{store}/_suggest", suggest),
        r("/{store}/{key:persisty_key}/_edit", edit_page, get_post),
        r("/{store}/{key:persisty_key}/_delete", delete_page, get_post),
        r("/{store}/{key:persisty_key}", detail),
    ]


def admin_mount(api: Api, *, prefix: str = "/admin", title: str | None = None) -> Mount:
    """The admin over an existing API's machinery, mounted at ``prefix`` (used by
    ``persisty.serve.app(..., admin=True)``).

    Example::

        from persisty.serve.admin import admin_mount
        site = Starlette(routes=[admin_mount(api)])   # api: the app's state.persisty
    """
    site = Site.make(api, title or f"{api.title} admin")
    inner = Router(routes=_routes(site))

    async def not_found(scope: Scope, receive: Any, send: Any) -> None:
        request = Request(scope, receive)
        response: Response = site.error_page(request, NotFound("no such page"))
        await site.finish(request, response, 0.0)(scope, receive, send)

    inner.default = not_found
    prefix = "/" + prefix.strip("/")
    return Mount(prefix, app=SessionCookieAuth(inner, api.auth is not None), name="admin")


def admin(
    db: Any,
    stores: Iterable[type[Any]],
    *,
    auth: JWTAuth | None = None,
    policies: Mapping[Any, Any] | None = None,
    login: DemoAuthenticator | None = None,
    prefix: str = "/admin",
    title: str = "persisty admin",
    anonymous: Iterable[Any] | bool = (),
    **options: Any,
) -> Router:
    """The admin UI for ``stores`` of ``db`` as a Starlette ``Router`` (mount it beside an
    API, or serve it alone): an index of the stores the signed-in principal may read, list
    pages (filters, search, sort, keyset paging, bulk delete and patch, CSV/JSON Lines
    export), details with relations, create and edit forms from the JSON Schema, and delete
    confirmations saying what the relations layer will do.

    ``auth``/``login``: sign-in with the app's authenticator (the JWT travels in an HttpOnly,
    SameSite=Lax cookie); ``policies`` as for :func:`persisty.serve.app`. Without ``auth``
    the admin is open to anyone who can reach it. Other keywords go to the API's
    configuration (``links``, ``limits`` …).

    Example::

        from starlette.applications import Starlette
        from persisty.serve import admin

        site = Starlette(routes=admin(db, [Note]).routes)    # /admin
    """
    api = serve_api(
        db,
        stores,
        ServeOptions(auth=auth, policies=policies, login=login, anonymous=anonymous, **options),
    )
    return Router(routes=[admin_mount(api, prefix=prefix, title=title)])
