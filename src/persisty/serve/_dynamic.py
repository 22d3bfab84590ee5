"""Serving runtime-defined stores without a restart: a snapshot of the routes, OpenAPI
document and GraphQL endpoint for the catalog's current definitions, rebuilt when the
catalog changes and swapped in one assignment (a request uses one snapshot throughout)."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, NoMatchFound, Route, Router
from starlette.types import Receive, Scope, Send

from persisty.dynamic import AsyncCatalog, AsyncDynamicStore, may_use, policy_of
from persisty.layers import relations_of
from persisty.serve._api import Api, JSONResponse, Served
from persisty.serve._graphql_http import graphql_route
from persisty.serve._openapi import openapi
from persisty.serve._rest import rest_routes
from persisty.serve._schemas import import_endpoint, schema_routes


@dataclass(frozen=True)
class Snapshot:
    """What is served for one state of the catalog."""

    serial: int | None
    api: Api
    """Static and runtime-defined stores together (OpenAPI, GraphQL)."""
    names: frozenset[str]
    router: Router
    graphql: Callable[[Request], Awaitable[Response]]
    spec: dict[str, Any]


def get_route_path(scope: Scope) -> str:
    """The request's path below the application's root path (when mounted)."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


async def _not_found(scope: Scope, receive: Receive, send: Send) -> None:
    response = JSONResponse(
        {"code": "not_found", "message": "Not Found", "field": None}, status_code=404
    )
    await response(scope, receive, send)


class DynamicView:
    """The catalog's stores as the API serves them, current within the catalog's
    staleness: every request first checks (at most once per ``staleness``) whether the
    catalog changed, and a change builds a new :class:`Snapshot`."""

    def __init__(self, api: Api, catalog: AsyncCatalog, graphql: bool) -> None:
        self.base = api
        self.catalog = catalog
        self.with_graphql = graphql
        self._snapshot: Snapshot | None = None

    async def current(self) -> Snapshot:
        """The snapshot for the catalog as this process knows it now."""
        await self.catalog.fresh()
        snap = self._snapshot
        if snap is None or snap.serial != self.catalog.serial:
            snap = self._snapshot = self._build()
        return snap

    def _build(self) -> Snapshot:
        cat = self.catalog
        dynamic: dict[str, Served] = {}
        for name, entry in sorted(cat.known().items()):
            d = entry.definition
            if d.state == "dropped" or name in self.base.served:
                continue
            meta = entry.meta  # named as the user's store: errors say "tasks", not "tasks__g1"
            policy = policy_of(d.spec) if d.spec["policy"]["kind"] != "allow" else None
            dynamic[name] = Served(
                cls=entry.cls,
                meta=meta,
                policy=policy,
                anonymous=self.base.auth is None,
                route_name=name,
                hidden=frozenset(a.name for a in meta.attrs if not a.readable),
                create_attrs=frozenset(meta.json_schema("create")["properties"]),
                update_attrs=frozenset(meta.json_schema("update")["properties"]),
                patch_attrs=frozenset(meta.json_schema("patch")["properties"]),
                related=bool(relations_of(entry.cls)),
                base=AsyncDynamicStore(cat, entry),
            )
        combined = dataclasses.replace(self.base, served={**self.base.served, **dynamic})
        only = dataclasses.replace(self.base, served=dynamic)
        rest = [r for r in rest_routes(only) if not getattr(r, "path", "").endswith("_login")]
        rest += import_routes(combined, self, dynamic)
        router = Router(routes=rest, default=_not_found)
        endpoint = graphql_route(combined).endpoint if self.with_graphql else _no_graphql
        return Snapshot(
            cat.serial, combined, frozenset(dynamic), router, endpoint, openapi(combined)
        )

    def visible(self, request: Request, name: str, snap: Snapshot) -> bool:
        """Whether the caller may know ``name`` (its owner, an admin, or a shared scope)."""
        entry = self.catalog.known().get(name)
        if entry is None:
            return False
        if self.base.auth is None:
            return True
        served = snap.api.served[name]
        principal = self.base.principal(request, served)
        d = entry.definition
        return may_use(d.owner, d.shared, principal, self.catalog.admin_scope)


async def _no_graphql(request: Request) -> Response:
    return JSONResponse(
        {"code": "not_found", "message": "Not Found", "field": None}, status_code=404
    )


class DynamicStores(BaseRoute):
    """``{prefix}/{name}…`` for every runtime-defined store: the same REST handlers as the
    static stores, from the current snapshot's route table (404 for any other name)."""

    def __init__(self, view: DynamicView, prefix: str) -> None:
        self.view = view
        self.prefix = prefix + "/"

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] == "http" and get_route_path(scope).startswith(self.prefix):
            return Match.FULL, {}
        return Match.NONE, {}

    def url_path_for(self, name: str, /, **path_params: Any) -> Any:
        raise NoMatchFound(name, path_params)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        snap = await self.view.current()
        name = get_route_path(scope)[len(self.prefix) :].split("/", 1)[0]
        if name not in snap.names or not self.view.visible(Request(scope), name, snap):
            await _not_found(scope, receive, send)
            return
        await snap.router(scope, receive, send)


def dynamic_routes(
    api: Api, catalog: AsyncCatalog, *, graphql: bool
) -> tuple[DynamicView, list[BaseRoute]]:
    """The routes the catalog adds: ``{prefix}/_schemas…``, an OpenAPI document and a
    GraphQL endpoint that follow the catalog, and :class:`DynamicStores` (last)."""
    view = DynamicView(api, catalog, graphql)

    async def openapi_json(request: Request) -> Response:
        return JSONResponse((await view.current()).spec)

    async def graphql_endpoint(request: Request) -> Response:
        return await (await view.current()).graphql(request)

    result: list[BaseRoute] = schema_routes(api, view)
    result.append(
        Route(f"{api.prefix}/openapi.json", openapi_json, methods=["GET"], include_in_schema=False)
    )
    if graphql:
        result.append(
            Route("/graphql", graphql_endpoint, methods=["GET", "POST"], include_in_schema=False)
        )
    return view, result


def import_routes(api: Api, view: DynamicView, dynamic: dict[str, Served]) -> list[BaseRoute]:
    """``POST {prefix}/{name}/_import`` for each runtime-defined store."""
    return [
        Route(f"{api.prefix}/{name}/_import", import_endpoint(api, s), methods=["POST"])
        for name, s in dynamic.items()
    ]
