"""The REST side of the API: reading requests (paths, query strings, conditional headers)
and the handlers of each route of a store, plus ``POST {prefix}/_login``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

import msgspec
from starlette.convertors import Convertor, register_url_convertor
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from persisty.errors import NotFound, PersistyError, PreconditionFailed, ValidationError
from persisty.model import etag
from persisty.query import PAGING_WORDS, Filter, filter_from_query
from persisty.serve._api import (
    DEFAULT_LIMITS,
    MAX_BATCH,
    Api,
    JSONResponse,
    Served,
    check_fields,
    check_values,
    error_response,
    full_item,
    json_object,
    only_attrs,
    parse_edit,
    pin_edits,
    read_json,
)
from persisty.serve._files_refs import render_refs
from persisty.serve._limits import Limits, check_query_json
from persisty.store import AsyncStore

_RESERVED = PAGING_WORDS


class _KeyConvertor(Convertor[str]):
    """A key: any text, "/" and newlines included (keys come percent-encoded)."""

    regex = r"(?s:(?!(?:_count|_batch/read|_batch/edit)\Z).+)"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return quote(value, safe="")


register_url_convertor("persisty_key", _KeyConvertor())


def _tags(header: str | None) -> list[str] | None:
    """The etags in an If-Match / If-None-Match header (``["*"]`` for any)."""
    if header is None:
        return None
    tags = []
    for part in header.split(","):
        t = part.strip()
        if t.startswith("W/"):
            t = t[2:]
        if len(t) >= 2 and t[0] == t[-1] == '"':
            t = t[1:-1]
        if t:
            tags.append(t)
    return tags


def _etag_header(tag: str) -> str:
    return f'"{tag}"'


def _limit(text: str | None, api: Api) -> int | None:
    if text is None:
        return None
    try:
        value = int(text)
    except ValueError:
        raise ValidationError("limit must be a positive integer", field="limit") from None
    if value < 1 or value > api.max_limit:
        raise ValidationError(f"limit must be between 1 and {api.max_limit}", field="limit")
    return value


def query_filter(request: Request, limits: Limits = DEFAULT_LIMITS) -> Filter:
    """The filter in the request's query string."""
    pairs = request.query_params.multi_items()
    check_query_json(pairs, limits)
    seen: set[str] = set()
    for k, _ in pairs:  # a repeated filter pair means AND (the query form); not so paging
        if k in seen and k in _RESERVED:
            raise ValidationError(f"{k} is given twice", field=k)
        seen.add(k)
    return filter_from_query([(k, v) for k, v in pairs if k not in _RESERVED])


def _key_from_path(served: Served, request: Request) -> str:
    key: str = request.path_params["key"]
    served.meta.parse_key(key)  # ValidationError naming the key attribute
    return key


def _merge_key(served: Served, key: str, data: dict[str, Any]) -> dict[str, Any]:
    """``data`` with the key attributes of ``key``; a different key in ``data`` is an error."""
    meta = served.meta
    values = meta.parse_key(key)
    for a, v in zip(meta.key_attrs, values, strict=True):
        if a.name in data:
            given = a.coerce(data[a.name])
            if given != v:
                raise ValidationError(
                    f"{meta.name}.{a.name} does not match the key in the path", field=a.name
                )
    data = dict(data)
    for a, v in zip(meta.key_attrs, values, strict=True):
        data[a.name] = msgspec.to_builtins(v)
    return data


# ---- handlers -----------------------------------------------------------------------------

Handler = Callable[[Api, Served, Request], Awaitable[Response]]


async def search(api: Api, served: Served, request: Request) -> Response:
    store = api.store(request, served)
    params = request.query_params
    page = await store.search(
        query_filter(request, api.limits),
        params.get("order"),
        _limit(params.get("limit"), api),
        params.get("page_key"),
    )
    items = page.items if not served.hidden else [api.out(served, i) for i in page.items]
    items = await render_refs(api, request, store, items)
    return _cached(served, JSONResponse({"items": items, "next_page_key": page.next_page_key}))


async def count(api: Api, served: Served, request: Request) -> Response:
    store = api.store(request, served)
    n = await store.count(query_filter(request, api.limits))
    return _cached(served, JSONResponse({"count": n}))


async def create(api: Api, served: Served, request: Request) -> Response:
    store = api.store(request, served)
    data = json_object(await read_json(request, api.limits), "the item")
    only_attrs(data, served.create_attrs, served.meta, "create")
    item = await store.create(data)
    key = served.meta.key_of(item)
    return JSONResponse(
        await _shown(api, request, store, served, item),
        status_code=201,
        headers={
            "Location": api.location(served, key),
            "ETag": _etag_header(api.etag(served, item)),
        },
    )


async def _shown(
    api: Api, request: Request, store: AsyncStore[Any], served: Served, item: Any
) -> Any:
    """One item as the caller sees it, file references shown with their signed URLs."""
    return (await render_refs(api, request, store, [api.out(served, item)]))[0]


def _cached(served: Served, response: Response) -> Response:
    if served.cache_control:
        response.headers["Cache-Control"] = served.cache_control
    return response


async def read(api: Api, served: Served, request: Request) -> Response:
    store = api.store(request, served)
    key = _key_from_path(served, request)
    item = await store.read(key)
    if item is None:
        raise _not_found(served, key)
    tag = api.etag(served, item)
    match = _tags(request.headers.get("if-none-match"))
    if match is not None and (tag in match or "*" in match):
        headers = {"ETag": _etag_header(tag)}
        if served.cache_control:
            headers["Cache-Control"] = served.cache_control
        return Response(status_code=304, headers=headers)
    return _cached(
        served,
        JSONResponse(
            await _shown(api, request, store, served, item), headers={"ETag": _etag_header(tag)}
        ),
    )


def _not_found(served: Served, key: str) -> PersistyError:
    return NotFound(f"no {served.name} with key {key!r}")


async def _if_match(
    api: Api, store: AsyncStore[Any], served: Served, key: str, request: Request
) -> str | None:
    """The store's etag to write with for the request's ``If-Match`` (served ETags are
    compared with the item as the caller sees it now; the write is then pinned to it)."""
    tags = _tags(request.headers.get("if-match"))
    if tags is None:
        return None
    if not tags:
        raise ValidationError("If-Match needs an etag", field="If-Match")
    current = await store.read(key)
    if current is None:
        if "*" in tags:
            raise PreconditionFailed("the item does not exist (If-Match: *)")
        raise _not_found(served, key)
    if "*" not in tags and api.etag(served, current) not in tags:
        raise PreconditionFailed("the item has changed (etag does not match)")
    return etag(current)


async def replace(api: Api, served: Served, request: Request) -> Response:
    store = api.store(request, served)
    key = _key_from_path(served, request)
    data = json_object(await read_json(request, api.limits), "the item")
    only_attrs(data, served.update_attrs, served.meta, "update")
    data = _merge_key(served, key, data)
    if_match = await _if_match(api, store, served, key, request)
    item = await full_item(served, store, key, data)
    if item is None:
        raise _not_found(served, key)
    new = await store.update(item, if_match=if_match)
    return JSONResponse(
        await _shown(api, request, store, served, new),
        headers={"ETag": _etag_header(api.etag(served, new))},
    )


async def patch(api: Api, served: Served, request: Request) -> Response:
    store = api.store(request, served)
    key = _key_from_path(served, request)
    data = json_object(await read_json(request, api.limits), "the changes")
    only_attrs(data, served.patch_attrs, served.meta, "patch")
    check_values(served.meta, data)
    if_match = await _if_match(api, store, served, key, request)
    new = await store.patch(key, data, if_match=if_match)
    return JSONResponse(
        await _shown(api, request, store, served, new),
        headers={"ETag": _etag_header(api.etag(served, new))},
    )


async def delete(api: Api, served: Served, request: Request) -> Response:
    store = api.store(request, served)
    key = _key_from_path(served, request)
    if_match = await _if_match(api, store, served, key, request)
    await store.delete(key, if_match=if_match)
    return Response(status_code=204)


async def batch_read(api: Api, served: Served, request: Request) -> Response:
    store = api.store(request, served)
    data = json_object(await read_json(request, api.limits), "the request")
    check_fields(data, {"keys"})
    keys = data.get("keys")
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise ValidationError("keys must be a list of strings", field="keys")
    if len(keys) > MAX_BATCH:
        raise ValidationError(f"at most {MAX_BATCH} keys", field="keys")
    items = await store.read_batch(keys)
    return JSONResponse(
        {"items": await render_refs(api, request, store, [api.out(served, i) for i in items])}
    )


async def batch_edit(api: Api, served: Served, request: Request) -> Response:
    store = api.store(request, served)
    data = json_object(await read_json(request, api.limits), "the request")
    check_fields(data, {"edits", "atomic"})
    raw = data.get("edits")
    atomic = data.get("atomic", True)
    if not isinstance(atomic, bool):
        raise ValidationError("atomic must be true or false", field="atomic")
    if not isinstance(raw, list):
        raise ValidationError("edits must be a list", field="edits")
    if len(raw) > MAX_BATCH:
        raise ValidationError(f"at most {MAX_BATCH} edits", field="edits")
    edits = [await parse_edit(served, store, e) for e in raw]
    await pin_edits(api, served, store, edits)
    results = await store.edit_batch(edits, atomic=atomic)
    out = []
    for r in results:
        entry: dict[str, Any] = {
            "ok": r.ok,
            "code": r.code,
            "message": r.message,
            "field": r.field,
            "item": None,
            "etag": None,
        }
        if r.ok and r.item is not None and r.edit.kind != "delete":
            entry["item"] = api.out(served, r.item)
            entry["etag"] = api.etag(served, r.item)
        out.append(entry)
    shown = await render_refs(api, request, store, [e["item"] for e in out])
    for entry, item in zip(out, shown, strict=True):
        entry["item"] = item
    return JSONResponse({"results": out})


async def login_route(api: Api, request: Request) -> Response:
    assert api.login is not None and api.auth is not None
    data = json_object(await read_json(request, api.limits), "the request")
    check_fields(data, {"username", "password"})
    username: Any = data.get("username")
    password: Any = data.get("password")
    if not isinstance(username, str) or not username:
        raise ValidationError("username must be a non-empty string", field="username")
    if not isinstance(password, str):
        raise ValidationError("password must be a string", field="password")
    scopes = api.login.authenticate(username, password)
    token = api.auth.issue(username, scopes)
    return JSONResponse(
        {
            "access_token": token,
            "token_type": "bearer",
            "expires_in": int(api.auth.expires_in.total_seconds()),
        }
    )


# ---- routes ------------------------------------------------------------------------------


def _wrap(
    api: Api, served: Served | None, fn: Handler | Callable[..., Awaitable[Response]]
) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        try:
            if served is None:
                return await fn(api, request)  # type: ignore[call-arg,arg-type]
            return await fn(api, served, request)
        except PersistyError as e:
            return error_response(e, anonymous=api.is_anonymous(request))

    endpoint.__name__ = getattr(fn, "__name__", "endpoint")
    return endpoint


def _route(path: str, api: Api, served: Served, handlers: dict[str, Handler]) -> Route:
    """One route per path, so a 405 names every method of the path in ``Allow``."""
    endpoints = {m: _wrap(api, served, h) for m, h in handlers.items()}
    if "GET" in endpoints:
        endpoints["HEAD"] = endpoints["GET"]

    async def endpoint(request: Request) -> Response:
        return await endpoints[request.method](request)

    return Route(path, endpoint, methods=list(handlers))


def rest_routes(api: Api) -> list[BaseRoute]:
    """The REST routes of every served store (and ``_login`` when the API has a login)."""
    prefix = api.prefix
    result: list[BaseRoute] = []
    if api.login is not None:
        result.append(Route(f"{prefix}/_login", _wrap(api, None, login_route), methods=["POST"]))
    for s in api.served.values():
        base = f"{prefix}/{s.name}"
        result += [
            _route(base, api, s, {"GET": search, "POST": create}),
            _route(base + "/_count", api, s, {"GET": count}),
            _route(base + "/_batch/read", api, s, {"POST": batch_read}),
            _route(base + "/_batch/edit", api, s, {"POST": batch_edit}),
            _route(
                base + "/{key:persisty_key}",
                api,
                s,
                {"GET": read, "PUT": replace, "PATCH": patch, "DELETE": delete},
            ),
        ]
    return result
