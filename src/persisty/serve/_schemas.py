"""``{prefix}/_schemas``: list, define, read, alter (``If-Match``), drop and plan the
runtime-defined stores over HTTP; and ``POST {prefix}/{name}/_import`` (CSV or JSON Lines)."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from persisty.dynamic import (
    AsyncCatalog,
    Definition,
    import_rows_async,
    rows_of,
    spec_from_json_schema,
    spec_to_json_schema,
)
from persisty.errors import PersistyError, PreconditionFailed, ValidationError
from persisty.model import etag
from persisty.serve._api import Api, JSONResponse, Served, error_response, json_object, read_json
from persisty.serve._limits import read_body

if TYPE_CHECKING:
    from persisty.serve._dynamic import DynamicView

MAX_IMPORT_BODY = 64 * 1024 * 1024


def _catalog(api: Api, view: DynamicView, request: Request) -> AsyncCatalog:
    """The catalog as the caller uses it: the caller's principal when the API has auth."""
    if api.auth is None:
        return view.catalog
    return view.catalog.as_principal(api.principal(request, None))


def definition_json(api: Api, d: Definition) -> dict[str, Any]:
    """A definition as the API shows it."""
    return {
        "name": d.name,
        "version": d.version,
        "state": d.state,
        "owner": d.owner,
        "shared": d.shared,
        "etag": etag(d),
        "spec": d.spec,
        "json_schema": spec_to_json_schema(d.spec),
        "href": f"{api.prefix}/{quote(d.name, safe='')}",
        "created_at": d.created_at,
        "updated_at": d.updated_at,
    }


def _answer(api: Api, d: Definition, status: int = 200) -> JSONResponse:
    return JSONResponse(
        definition_json(api, d),
        status_code=status,
        headers={
            "ETag": f'"{etag(d)}"',
            "Location": f"{api.prefix}/_schemas/{quote(d.name, safe='')}",
        },
    )


def _if_match(request: Request) -> str | None:
    header = request.headers.get("if-match")
    if header is None:
        return None
    tag = header.strip()
    if tag.startswith("W/"):
        tag = tag[2:]
    return tag.strip('"')


def _spec_of(name: str | None, raw: Any) -> dict[str, Any]:
    """A spec from a request body: persisty's spec, or ``{"json_schema": …, "name", "key"}``."""
    body: dict[str, Any] = json_object(raw, "a definition")
    if "json_schema" in body:
        extra = {k: v for k, v in body.items() if k not in ("json_schema", "name", "key")}
        given = body.get("name", name)
        if not isinstance(given, str):
            raise ValidationError("name: a definition needs a name", field="name")
        spec: dict[str, Any] = spec_from_json_schema(
            given, body["json_schema"], body.get("key"), **extra
        )
        return spec
    if name is not None and "name" not in body:
        body = {**body, "name": name}
    return body


Handler = Callable[[Api, "DynamicView", Request], Awaitable[Response]]


async def list_schemas(api: Api, view: DynamicView, request: Request) -> Response:
    cat = _catalog(api, view, request)
    return JSONResponse({"items": [definition_json(api, d) for d in await cat.list()]})


async def define(api: Api, view: DynamicView, request: Request) -> Response:
    cat = _catalog(api, view, request)
    d = await cat.define(_spec_of(None, await read_json(request, api.limits)))
    return _answer(api, d, 201)


async def read_schema(api: Api, view: DynamicView, request: Request) -> Response:
    d = await _catalog(api, view, request).get(request.path_params["name"])
    return _answer(api, d)


async def alter(api: Api, view: DynamicView, request: Request) -> Response:
    name = request.path_params["name"]
    tag = _if_match(request)
    if tag is None:
        raise PreconditionFailed(
            "altering a definition needs If-Match (its ETag)", field="if_match"
        )
    cat = _catalog(api, view, request)
    d = await cat.alter(name, _spec_of(name, await read_json(request, api.limits)), if_match=tag)
    return _answer(api, d)


async def drop(api: Api, view: DynamicView, request: Request) -> Response:
    cat = _catalog(api, view, request)
    await cat.drop(request.path_params["name"], if_match=_if_match(request))
    return Response(status_code=204)


async def plan(api: Api, view: DynamicView, request: Request) -> Response:
    name = request.path_params["name"]
    cat = _catalog(api, view, request)
    steps = await cat.plan(name, _spec_of(name, await read_json(request, api.limits)))
    return JSONResponse(steps.to_dict())


def _endpoint(
    api: Api, view: DynamicView, handlers: dict[str, Handler]
) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        try:
            return await handlers[request.method](api, view, request)
        except PersistyError as e:
            return error_response(e, anonymous=api.is_anonymous(request))

    return endpoint


def schema_routes(api: Api, view: DynamicView) -> list[BaseRoute]:
    """The routes of ``{prefix}/_schemas``."""
    base = f"{api.prefix}/_schemas"
    return [
        Route(
            base,
            _endpoint(api, view, {"GET": list_schemas, "POST": define}),
            methods=["GET", "POST"],
        ),
        Route(base + "/{name}/_plan", _endpoint(api, view, {"POST": plan}), methods=["POST"]),
        Route(
            base + "/{name}",
            _endpoint(
                api, view, {"GET": read_schema, "PUT": alter, "PATCH": alter, "DELETE": drop}
            ),
            methods=["GET", "PUT", "PATCH", "DELETE"],
        ),
    ]


def _format(request: Request) -> str:
    given = request.query_params.get("format")
    if given in ("csv", "jsonl"):
        return given
    if given is not None:
        raise ValidationError("format must be csv or jsonl", field="format")
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype in ("text/csv", "application/csv"):
        return "csv"
    if ctype in (
        "application/x-ndjson",
        "application/jsonl",
        "application/jsonlines",
        "application/x-jsonlines",
        "application/json",
        "",
    ):
        return "jsonl"
    raise ValidationError(
        f"cannot import {ctype}: send text/csv or application/x-ndjson", field="content-type"
    )


def import_endpoint(api: Api, served: Served) -> Callable[[Request], Awaitable[Response]]:
    """``POST {prefix}/{name}/_import``: one item per row; ``atomic=true``: all or none."""
    limits = dataclasses.replace(api.limits, max_body=max(api.limits.max_body, MAX_IMPORT_BODY))

    async def endpoint(request: Request) -> Response:
        try:
            fmt = _format(request)
            atomic = request.query_params.get("atomic", "false").lower()
            if atomic not in ("true", "false", "1", "0"):
                raise ValidationError("atomic must be true or false", field="atomic")
            body = await read_body(request, limits)
            try:
                text = body.decode("utf-8-sig")
            except UnicodeDecodeError:
                raise ValidationError("the body must be UTF-8 text", field="body") from None
            store = api.store(request, served)
            forced = _forced_values(store)
            report = await import_rows_async(
                store,
                rows_of(text, fmt),
                cells=fmt == "csv",
                atomic=atomic in ("true", "1"),
                forced=forced,
            )
        except PersistyError as e:
            return error_response(e, anonymous=api.is_anonymous(request))
        status = 422 if report.failed and atomic in ("true", "1") else 200
        return JSONResponse(report.to_dict(), status_code=status)

    return endpoint


def _forced_values(store: Any) -> dict[str, Any]:
    """What the caller's policy sets on create (the owner), so rows need not carry it."""
    while store is not None:
        rules = getattr(store, "rules", None)
        forced = getattr(rules, "forced", None)
        if isinstance(forced, dict):
            return forced
        store = getattr(store, "inner", None)
    return {}
