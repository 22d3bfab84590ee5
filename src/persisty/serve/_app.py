"""The wiring of the API: which stores are served how (:class:`ServeOptions`), their REST
and GraphQL routes, the index, OpenAPI and docs pages, and the Starlette application."""

from __future__ import annotations

import gc
import html
from collections.abc import Iterable, Mapping
from contextlib import asynccontextmanager
from typing import Any, Unpack

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Route, Router

from persisty.dynamic import AsyncCatalog
from persisty.serve._api import Api, JSONResponse
from persisty.serve._dynamic import DynamicStores, dynamic_routes
from persisty.serve._files_http import file_routes
from persisty.serve._graphql_http import graphql_route
from persisty.serve._openapi import openapi, swagger_html
from persisty.serve._options import (
    APP_ONLY,
    Cors,
    RouterKeywords,
    ServeKeywords,
    ServeOptions,
    serve_api,
)
from persisty.serve._rest import rest_routes
from persisty.serve._static import static_route
from persisty.serve.admin import admin_mount
from persisty.store import AsyncDatabase


def routes(
    db: AsyncDatabase,
    stores: Iterable[type[Any]],
    options: ServeOptions,
) -> tuple[Api, list[BaseRoute]]:
    """The :class:`Api` and its routes (see :func:`app` for the options)."""
    api = serve_api(db, stores, options)
    docs, graphql = options.docs, options.graphql
    result = rest_routes(api) + file_routes(api, api.files)
    catalog = options.dynamic
    view = None
    if catalog is not None:
        if not isinstance(catalog, AsyncCatalog):
            raise TypeError(
                "dynamic= takes an async catalog: persisty.dynamic.catalog(db) of a "
                "persisty.aio database"
            )
        catalog.static = catalog.static | frozenset(api.served)
        view, extra = dynamic_routes(api, catalog, graphql=graphql)
        result += extra  # before the static OpenAPI and GraphQL routes they replace
    spec_cache: dict[str, Any] = {}

    async def openapi_json(request: Request) -> Response:
        if "spec" not in spec_cache:
            spec_cache["spec"] = openapi(api)
        return JSONResponse(spec_cache["spec"])

    result.append(
        Route(f"{api.prefix}/openapi.json", openapi_json, methods=["GET"], include_in_schema=False)
    )

    async def index(request: Request) -> Response:
        return JSONResponse(
            {
                "stores": {
                    n: {"href": f"{api.prefix}/{n}", "description": s.meta.description}
                    for n, s in api.served.items()
                },
                "openapi": f"{api.prefix}/openapi.json",
                "docs": "/docs" if docs else None,
                "graphql": "/graphql" if graphql else None,
            }
        )

    result.append(Route(api.prefix or "/", index, methods=["GET"], include_in_schema=False))
    if api.prefix:
        result.append(_root_route(api, docs=docs, graphql=graphql, admin=options.admin))
    if docs or graphql:
        result.append(static_route())
    if docs:

        async def docs_page(request: Request) -> Response:
            # relative: the page also works when the routes are mounted under a path
            spec = f"{api.prefix.lstrip('/')}/openapi.json"
            return HTMLResponse(swagger_html(spec, api.title))

        result.append(Route("/docs", docs_page, methods=["GET"], include_in_schema=False))
    if graphql and view is None:
        result.append(graphql_route(api))
    if view is not None:
        result.append(DynamicStores(view, api.prefix))  # last: after every static route
    return api, result


def _root_route(api: Api, *, docs: bool, graphql: bool, admin: bool = False) -> Route:
    """``GET /``: where the API, its docs and GraphQL are (a page of links for a browser)."""
    links = {
        "api": api.prefix,
        "openapi": f"{api.prefix}/openapi.json",
        "docs": "/docs" if docs else None,
        "graphql": "/graphql" if graphql else None,
    }
    if admin:
        links["admin"] = "/admin/"

    async def root(request: Request) -> Response:
        if "text/html" in request.headers.get("accept", ""):
            items = "".join(
                f'<li><a href="{url.lstrip("/")}">{name}</a>: {url}</li>'
                for name, url in links.items()
                if url
            )
            return HTMLResponse(
                f'<!doctype html><html><head><meta charset="utf-8">'
                f"<title>{html.escape(api.title)}</title></head><body>"
                f"<h1>{html.escape(api.title)}</h1><ul>{items}</ul>"
                f"</body></html>"
            )
        return JSONResponse(links)

    return Route("/", root, methods=["GET"], include_in_schema=False)


def router(
    db: AsyncDatabase, stores: Iterable[type[Any]], **options: Unpack[RouterKeywords]
) -> Router:
    """The API's routes as a Starlette ``Router``, to mount in an existing application.

    Takes the arguments of :func:`app`. With FastAPI: ``fastapi_app.mount("/", router(...))``;
    with Starlette: ``Mount("/", routes=router(...).routes)``.

    Example::

        from starlette.applications import Starlette
        from starlette.routing import Mount
        from persisty.serve import router

        site = Starlette(routes=[Mount("/data", router(db, [Note]))])   # /data/api/note
    """
    for name in options:
        if name in APP_ONLY:
            raise TypeError(
                f"router() got an unexpected keyword argument {name!r} "
                "(an option of the application: give it to app())"
            )
    _, rs = routes(db, stores, ServeOptions(**options))
    return Router(routes=rs)


def _cors_middleware(cors: Cors) -> list[Middleware]:
    if not cors:
        return []
    if cors is True:
        options: dict[str, Any] = {"allow_origins": ["*"]}
    elif isinstance(cors, Mapping):
        options = dict(cors)
    else:
        options = {"allow_origins": list(cors)}
    options.setdefault("allow_methods", ["GET", "POST", "PUT", "PATCH", "DELETE"])
    # the file routes add ranges, conditional downloads and digests to what items use
    options.setdefault(
        "allow_headers",
        [
            "Authorization",
            "Content-Type",
            "If-Match",
            "If-None-Match",
            "Range",
            "If-Range",
            "If-Modified-Since",
            "If-Unmodified-Since",
            "Content-Digest",
        ],
    )
    options.setdefault(
        "expose_headers",
        [
            "ETag",
            "Location",
            "Content-Range",
            "Content-Length",
            "Content-Disposition",
            "Accept-Ranges",
            "Last-Modified",
        ],
    )
    return [Middleware(CORSMiddleware, **options)]


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "error")
    return JSONResponse(
        {"code": code, "message": str(exc.detail), "field": None},
        status_code=exc.status_code,
        headers=exc.headers,
    )


async def _server_error(request: Request, exc: Exception) -> Response:
    return JSONResponse(
        {"code": "internal_error", "message": "internal server error", "field": None},
        status_code=500,
    )


def app(
    db: AsyncDatabase, stores: Iterable[type[Any]], **options: Unpack[ServeKeywords]
) -> Starlette:
    """A Starlette ASGI app serving ``stores`` of ``db`` over REST and GraphQL.

    Routes per store ``name``: ``GET/POST {prefix}/name``, ``GET {prefix}/name/_count``,
    ``POST {prefix}/name/_batch/read`` and ``/_batch/edit``, ``GET/PUT/PATCH/DELETE
    {prefix}/name/{key}``; ``{prefix}/openapi.json``, ``/docs`` (Swagger UI) and
    ``/graphql`` (GraphiQL in a browser).

    ``auth``: a :class:`JWTAuth`; then requests need a bearer token except for the stores in
    ``anonymous`` (classes or names, or ``True`` for all). ``policies`` maps a class (or
    store name) to a ``persisty.layers.Policy`` applied to the caller's principal (an
    anonymous caller is ``Principal("anonymous", {"anonymous"})``). ``login``: a
    :class:`DemoAuthenticator` enabling ``POST {prefix}/_login``. ``cache_control``: one
    ``Cache-Control`` value, or a mapping per class/name. ``cors``: ``True`` (any origin), a
    list of origins, or keyword arguments for Starlette's ``CORSMiddleware``. ``links``:
    :class:`Link` relations, nested fields in GraphQL. ``limits``: a :class:`Limits` (body
    size, JSON nesting, GraphQL depth, cost, root fields, batch sizes, time; safe defaults).
    ``on_startup``: callables (sync or async) run when the app starts, e.g. to seed data; the
    database is closed on shutdown. ``admin=True`` mounts the admin UI at ``/admin``
    (:func:`persisty.serve.admin`) over the same stores, policies and sign-in.

    ``files`` maps names to async file stores, served under ``{prefix}/_files/{name}``
    (downloads with ranges and conditional requests, signed URLs, PUT, DELETE, list, count,
    copy, upload grants; see ``docs/files.md``); ``file_policies`` maps a name to a
    ``Policy`` over ``persisty.files.FileInfo`` (``Policy.owner("owner")``);
    ``file_anonymous`` names the file stores callers without credentials may read;
    ``file_redirect`` the S3 ones that answer downloads with a 302 to a presigned URL.

    ``dynamic``: a :func:`persisty.dynamic.catalog` of an async database; its stores are
    served at ``{prefix}/{name}`` as soon as they are defined (and 404 once dropped), with
    ``{prefix}/_schemas`` to list, define, read, alter (``If-Match``), plan and drop them,
    ``POST {prefix}/{name}/_import`` for CSV or JSON Lines, and OpenAPI and GraphQL that
    follow the catalog (see ``docs/dynamic.md``).

    A store listed in ``anonymous`` without a policy is read-only for anonymous callers;
    give it a policy to let them do more. ``db`` must be an async database
    (``persisty.aio.connect``): a sync one is a ``TypeError``.

    Example::

        import persisty.aio
        from persisty.serve import app, JWTAuth
        from persisty.layers import Policy

        db = persisty.aio.connect("sqlite:///notes.db")
        asgi = app(db, [Note], auth=JWTAuth(secret="a long random secret of 32+ bytes"),
                   policies={Note: Policy.owner("owner")}, cache_control="private, no-cache")
        # uvicorn module:asgi   or   persisty serve module:asgi
    """
    return serve(db, stores, ServeOptions(**options))


def serve(db: AsyncDatabase, stores: Iterable[type[Any]], options: ServeOptions) -> Starlette:
    """:func:`app` with its options as one :class:`ServeOptions`."""
    api, rs = routes(db, stores, options)
    if options.admin:
        rs.append(admin_mount(api, title=f"{options.title} admin"))

    @asynccontextmanager
    async def lifespan(_: Starlette) -> Any:
        for fn in options.on_startup:
            result = fn()
            if hasattr(result, "__await__"):
                await result
        # what exists once the app has started (modules, schema, stores) lives as long as
        # the process: frozen, the collector's full passes no longer walk it, and a large
        # response no longer pauses every request for a walk of the whole heap
        gc.freeze()
        yield
        gc.unfreeze()
        if isinstance(options.dynamic, AsyncCatalog):
            await options.dynamic.close()  # its change subscription
        if options.close_database:
            for mount in api.files.values():
                await mount.files.close()
            await db.close()

    asgi = Starlette(
        debug=options.debug,
        routes=rs,
        middleware=_cors_middleware(options.cors),
        lifespan=lifespan,
        exception_handlers={HTTPException: _http_error, 500: _server_error},
    )
    asgi.state.persisty = api
    return asgi
