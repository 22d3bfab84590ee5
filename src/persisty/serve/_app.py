"""The REST API over async stores, as a Starlette application or a router to mount."""

from __future__ import annotations

import base64
import gc
import html
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any
from urllib.parse import quote

import msgspec
from starlette.applications import Starlette
from starlette.convertors import Convertor, register_url_convertor
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Route, Router

from persisty._version import __version__
from persisty.errors import (
    Forbidden,
    PersistyError,
    Unauthorized,
    ValidationError,
)
from persisty.model import StoreMeta, etag, meta_of
from persisty.query import Filter, filter_from_json, filter_from_query
from persisty.serve._auth import ANONYMOUS_SUBJECT, DemoAuthenticator, JWTAuth, make_principal
from persisty.serve._limits import Limits, check_query_json, decode_json, read_body
from persisty.store import AsyncDatabase, AsyncStore, Edit

DEFAULT_LIMITS = Limits()

MAX_BATCH = 1000


class _KeyConvertor(Convertor[str]):
    """A key: any text, "/" and newlines included (keys come percent-encoded)."""

    regex = r"(?s:(?!(?:_count|_batch/read|_batch/edit)\Z).+)"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return quote(value, safe="")


register_url_convertor("persisty_key", _KeyConvertor())
_ENCODER = msgspec.json.Encoder()
_RESERVED = frozenset({"order", "limit", "page_key"})


class JSONResponse(Response):
    """A JSON response encoded with msgspec (dataclass items, datetimes, UUIDs …)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return _ENCODER.encode(content)


class BadRequest(PersistyError):
    """The request could not be read (malformed JSON, wrong content)."""

    code = "bad_request"
    status = 400


class NotModified(Exception):
    """Internal: answer 304."""


@dataclass(frozen=True)
class Link:
    """A relation for GraphQL: ``source.attr`` holds the key of a ``target`` item.

    ``name`` is the nested field on the source (default: ``attr`` without ``_id``/``_key``);
    ``back``, when given, is a list field on the target with its source items. Each level of
    a query loads its related items with one batched read per relation.

    Example::

        @stored
        class Channel:
            id: str

        @stored
        class Post:
            id: str
            channel_id: str

        app(db, [Channel, Post], links=[
            Link(Post, "channel_id", Channel, back="posts"),   # post.channel, channel.posts
        ])
    """

    source: type[Any]
    attr: str
    target: type[Any]
    name: str | None = None
    back: str | None = None

    def field_name(self) -> str:
        if self.name:
            return self.name
        for suffix in ("_id", "_key"):
            if self.attr.endswith(suffix):
                return self.attr[: -len(suffix)]
        return self.attr + "_item"


@dataclass(eq=False)
class Served:
    """One store as the API serves it."""

    cls: type[Any]
    meta: StoreMeta
    policy: Any = None
    anonymous: bool = False
    cache_control: str | None = None
    hidden: frozenset[str] = frozenset()
    create_attrs: frozenset[str] = frozenset()
    update_attrs: frozenset[str] = frozenset()
    patch_attrs: frozenset[str] = frozenset()
    related: bool = False
    base: AsyncStore[Any] | None = None

    @property
    def name(self) -> str:
        return self.meta.name


@dataclass(eq=False)
class Api:
    """Everything the routes share: the database, the stores, auth and policies."""

    db: AsyncDatabase
    served: dict[str, Served]
    auth: JWTAuth | None = None
    login: DemoAuthenticator | None = None
    prefix: str = "/api"
    max_limit: int = 1000
    title: str = "persisty"
    version: str = __version__
    extra: dict[str, Any] = field(default_factory=dict)
    limits: Limits = DEFAULT_LIMITS

    # ---- principals and stores ----------------------------------------------------------

    def principal(self, request: Request, served: Served | None) -> Any:
        """The caller for ``served`` (``None`` when no policy applies and no token came).

        A verified token's principal is kept for the request; whether an anonymous caller
        may use a store is decided per store (a GraphQL request may touch several)."""
        header = request.headers.get("authorization")
        if header:
            cached = request.scope.get("persisty.principal")
            if cached is not None:
                return cached
            if self.auth is None:
                raise Unauthorized("this API does not accept credentials")
            scheme, _, token = header.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise Unauthorized("use Authorization: Bearer <token>")
            sub, scopes = self.auth.verify(token.strip())
            principal = make_principal(sub, scopes)
            request.scope["persisty.principal"] = principal
            return principal
        if self.auth is not None and not (served is not None and served.anonymous):
            raise Unauthorized("credentials are required")
        if served is not None and served.policy is None:
            return None
        return _anonymous()

    def store(self, request: Request, served: Served) -> AsyncStore[Any]:
        """The store as the caller may use it: under its policy (or, for attributes the model
        hides, under one that allows everything else), with declared relations checked and
        applied as the caller sees the related stores. Made once per request."""
        views = request.scope.setdefault("persisty.stores", {})
        found = views.get(served.name)
        if found is None:
            base = self.db.store(served.cls)
            if served.related:  # declared relations: batched loads, integrity on delete
                from persisty.layers import related

                base = related(base, lambda cls: self._related_view(request, cls))
            found = views[served.name] = self._view(request, served, base)
        return found  # type: ignore[no-any-return]

    def _view(self, request: Request, served: Served,
              base: AsyncStore[Any] | None = None) -> AsyncStore[Any]:
        """``base`` (by default ``served``'s store) under the caller's policy."""
        from persisty.layers import Policy, secured

        raw = base if base is not None else self.db.store(served.cls)
        principal = self.principal(request, served)
        policy = served.policy
        if policy is None and self.auth is not None and self.is_anonymous(request):
            policy = _READ_ONLY  # anonymous callers only read a store no policy opens more
        if policy is None and not served.hidden:
            return raw
        return secured(raw, policy or Policy.allow_all(), principal or _anonymous())

    def _related_view(self, request: Request, cls: type[Any]) -> AsyncStore[Any]:
        """The store of a related class as the caller sees it; a class the caller may not
        use at all shows it nothing (its items answer as missing)."""
        from persisty.layers import secured

        meta = meta_of(cls)
        served = self.served.get(meta.name)
        if served is None or served.cls is not cls:
            return self.db.store(cls)
        views = request.scope.setdefault("persisty.related", {})
        found = views.get(meta.name)
        if found is None:
            try:
                found = self._view(request, served)
            except Unauthorized:
                found = secured(self.db.store(cls), _NOTHING, _anonymous())
            views[meta.name] = found
        return found  # type: ignore[no-any-return]

    def etag(self, served: Served, item: Any) -> str:
        """The ETag of ``item`` as served: a MAC (with the database's secret) of exactly
        what the caller receives, so it says nothing about what the caller may not read."""
        view = self.out(served, item)
        digest = self.db.pages.mac("etag:" + served.name, _ENCODER.encode(view))
        return base64.urlsafe_b64encode(digest[:18]).decode()

    async def store_tags(self, served: Served, store: AsyncStore[Any],
                         wanted: Sequence[tuple[str, str]]) -> list[str]:
        """For each (key, served ETag), the store's etag to write with: the current one when
        the served ETag matches the item as the caller sees it now, else one that never
        matches (the write then fails its precondition)."""
        if not wanted:
            return []
        keys = [k for k, _ in wanted]
        current = await store.read_batch(keys)
        return [etag(c) if c is not None and self.etag(served, c) == tag else _NO_MATCH
                for c, (_, tag) in zip(current, wanted, strict=True)]

    def is_anonymous(self, request: Request) -> bool:
        return "authorization" not in request.headers

    # ---- encoding -----------------------------------------------------------------------

    def out(self, served: Served, item: Any) -> Any:
        if item is None or not served.hidden:
            return item
        data = msgspec.to_builtins(item)
        for name in served.hidden:
            data.pop(name, None)
        return data

    def location(self, served: Served, key: str) -> str:
        return f"{self.prefix}/{served.name}/{quote(key, safe='')}"


# ---- helpers ------------------------------------------------------------------------------

_ANONYMOUS: list[Any] = []


def _anonymous() -> Any:
    if not _ANONYMOUS:
        _ANONYMOUS.append(make_principal(ANONYMOUS_SUBJECT, {ANONYMOUS_SUBJECT}))
    return _ANONYMOUS[0]


def _policies() -> tuple[Any, Any]:
    from persisty.layers import Policy
    from persisty.query import NONE

    return Policy.read_only(), Policy(read=NONE, create=NONE, update=NONE, delete=NONE)


_READ_ONLY, _NOTHING = _policies()
_NO_MATCH = "\x00no-match"



def error_response(e: PersistyError, *, anonymous: bool = False,
                   headers: Mapping[str, str] | None = None) -> JSONResponse:
    """The JSON error ``{code, message, field}`` with the error's status."""
    if isinstance(e, Forbidden) and anonymous:
        e = Unauthorized("credentials are required")
    hdrs = dict(headers or {})
    if isinstance(e, Unauthorized):
        hdrs["WWW-Authenticate"] = 'Bearer realm="persisty"'
    return JSONResponse(e.to_dict(), status_code=e.status, headers=hdrs)


async def read_json(request: Request, limits: Limits | None = None) -> Any:
    """The request's JSON body, within ``limits`` (size: 413, nesting: 422)."""
    limits = limits or DEFAULT_LIMITS
    body = await read_body(request, limits)
    if not body:
        raise BadRequest("the request needs a JSON body")
    return decode_json(body, limits)


def _object(data: Any, what: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ValidationError(f"{what} must be a JSON object, not {type(data).__name__}")
    return data


def _fields(data: Mapping[str, Any], allowed: set[str]) -> None:
    for name in data:
        if name not in allowed:
            raise ValidationError(f"unknown field {name!r}", field=name)


def check_values(meta: StoreMeta, changes: Mapping[str, Any]) -> None:
    """Each value of ``changes`` is valid for its attribute (type and constraints)."""
    for name, value in changes.items():
        a = meta.attr(name)
        tp = a.type
        if a.constraints:
            tp = Annotated[tp, msgspec.Meta(**a.constraints)]
        try:
            msgspec.convert(value, tp, strict=False)
        except (msgspec.ValidationError, TypeError, ValueError) as e:
            raise ValidationError(f"{meta.name}.{name}: {e}", field=name) from None


def _only(data: Mapping[str, Any], allowed: frozenset[str], meta: StoreMeta,
          shape: str) -> None:
    for name in data:
        if name not in allowed:
            if name in meta.by_name:
                raise ValidationError(f"{meta.name}.{name} cannot be set on {shape}", field=name)
            raise ValidationError(f"{meta.name} has no attribute {name!r}", field=name)


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


def _precondition(data: Mapping[str, Any]) -> Filter | None:
    raw = data.get("precondition")
    return None if raw is None else filter_from_json(raw)


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
                raise ValidationError(f"{meta.name}.{a.name} does not match the key in the path",
                                      field=a.name)
    data = dict(data)
    for a, v in zip(meta.key_attrs, values, strict=True):
        data[a.name] = msgspec.to_builtins(v)
    return data


async def _full_item(served: Served, store: AsyncStore[Any], key: str,
                     data: dict[str, Any]) -> Any:
    """The item a PUT describes: the body, plus what the update shape cannot change taken
    from the stored item; ``None`` when no item has ``key``."""
    current = await store.read(key)
    if current is None:
        return None
    base = msgspec.to_builtins(current)
    keep = {k: v for k, v in base.items() if k not in served.update_attrs}
    return served.meta.from_builtins({**keep, **data})


# ---- handlers -----------------------------------------------------------------------------

Handler = Callable[[Api, Served, Request], Awaitable[Response]]


async def search(api: Api, served: Served, request: Request) -> Response:
    store = api.store(request, served)
    params = request.query_params
    page = await store.search(query_filter(request, api.limits), params.get("order"),
                              _limit(params.get("limit"), api), params.get("page_key"))
    items = page.items if not served.hidden else [api.out(served, i) for i in page.items]
    return _cached(served, JSONResponse({"items": items, "next_page_key": page.next_page_key}))


async def count(api: Api, served: Served, request: Request) -> Response:
    store = api.store(request, served)
    n = await store.count(query_filter(request, api.limits))
    return _cached(served, JSONResponse({"count": n}))


async def create(api: Api, served: Served, request: Request) -> Response:
    store = api.store(request, served)
    data = _object(await read_json(request, api.limits), "the item")
    _only(data, served.create_attrs, served.meta, "create")
    item = await store.create(data)
    key = served.meta.key_of(item)
    return JSONResponse(api.out(served, item), status_code=201,
                        headers={"Location": api.location(served, key), "ETag": _etag_header(
                            api.etag(served, item))})


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
    return _cached(served, JSONResponse(api.out(served, item),
                                        headers={"ETag": _etag_header(tag)}))


def _not_found(served: Served, key: str) -> PersistyError:
    from persisty.errors import NotFound

    return NotFound(f"no {served.name} with key {key!r}")


async def _if_match(api: Api, store: AsyncStore[Any], served: Served, key: str,
                    request: Request) -> str | None:
    """The store's etag to write with for the request's ``If-Match`` (served ETags are
    compared with the item as the caller sees it now; the write is then pinned to it)."""
    tags = _tags(request.headers.get("if-match"))
    if tags is None:
        return None
    from persisty.errors import PreconditionFailed

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
    data = _object(await read_json(request, api.limits), "the item")
    _only(data, served.update_attrs, served.meta, "update")
    data = _merge_key(served, key, data)
    if_match = await _if_match(api, store, served, key, request)
    item = await _full_item(served, store, key, data)
    if item is None:
        raise _not_found(served, key)
    new = await store.update(item, if_match=if_match)
    return JSONResponse(api.out(served, new), headers={"ETag": _etag_header(api.etag(served,
                                                                                     new))})


async def patch(api: Api, served: Served, request: Request) -> Response:
    store = api.store(request, served)
    key = _key_from_path(served, request)
    data = _object(await read_json(request, api.limits), "the changes")
    _only(data, served.patch_attrs, served.meta, "patch")
    check_values(served.meta, data)
    if_match = await _if_match(api, store, served, key, request)
    new = await store.patch(key, data, if_match=if_match)
    return JSONResponse(api.out(served, new), headers={"ETag": _etag_header(api.etag(served,
                                                                                     new))})


async def delete(api: Api, served: Served, request: Request) -> Response:
    store = api.store(request, served)
    key = _key_from_path(served, request)
    if_match = await _if_match(api, store, served, key, request)
    await store.delete(key, if_match=if_match)
    return Response(status_code=204)


async def batch_read(api: Api, served: Served, request: Request) -> Response:
    store = api.store(request, served)
    data = _object(await read_json(request, api.limits), "the request")
    _fields(data, {"keys"})
    keys = data.get("keys")
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise ValidationError("keys must be a list of strings", field="keys")
    if len(keys) > MAX_BATCH:
        raise ValidationError(f"at most {MAX_BATCH} keys", field="keys")
    items = await store.read_batch(keys)
    return JSONResponse({"items": [api.out(served, i) for i in items]})


async def batch_edit(api: Api, served: Served, request: Request) -> Response:
    store = api.store(request, served)
    data = _object(await read_json(request, api.limits), "the request")
    _fields(data, {"edits", "atomic"})
    raw = data.get("edits")
    atomic = data.get("atomic", True)
    if not isinstance(atomic, bool):
        raise ValidationError("atomic must be true or false", field="atomic")
    if not isinstance(raw, list):
        raise ValidationError("edits must be a list", field="edits")
    if len(raw) > MAX_BATCH:
        raise ValidationError(f"at most {MAX_BATCH} edits", field="edits")
    edits = [await _edit(served, store, e) for e in raw]
    await pin_edits(api, served, store, edits)
    results = await store.edit_batch(edits, atomic=atomic)
    out = []
    for r in results:
        entry: dict[str, Any] = {"ok": r.ok, "code": r.code, "message": r.message,
                                 "field": r.field, "item": None, "etag": None}
        if r.ok and r.item is not None and r.edit.kind != "delete":
            entry["item"] = api.out(served, r.item)
            entry["etag"] = api.etag(served, r.item)
        out.append(entry)
    return JSONResponse({"results": out})


_EDIT_FIELDS = {
    "create": frozenset({"op", "item"}),
    "update": frozenset({"op", "item", "if_match", "precondition"}),
    "patch": frozenset({"op", "key", "changes", "if_match", "precondition"}),
    "delete": frozenset({"op", "key", "if_match", "precondition"}),
}


async def pin_edits(api: Api, served: Served, store: AsyncStore[Any],
                    edits: Sequence[Edit]) -> None:
    """Turn the served ETags in ``edits`` into the store's (see :meth:`Api.store_tags`)."""
    wanted: list[tuple[int, str, str]] = []
    for i, e in enumerate(edits):
        if e.if_match is None:
            continue
        key = e.key if e.key is not None else served.meta.key_of(e.item)
        wanted.append((i, key, e.if_match))
    tags = await api.store_tags(served, store, [(k, t) for _, k, t in wanted])
    for (i, _, _), tag in zip(wanted, tags, strict=True):
        edits[i].if_match = tag


def _forced(store: Any) -> Mapping[str, Any]:
    """The values the access-control layer of ``store`` sets on create (none without one)."""
    rules = getattr(store, "rules", None)
    while rules is None and getattr(store, "inner", None) is not None:
        store = store.inner
        rules = getattr(store, "rules", None)
    forced = getattr(rules, "forced", None)
    return forced if isinstance(forced, Mapping) else {}


async def _edit(served: Served, store: AsyncStore[Any], raw: Any) -> Edit:
    e = _object(raw, "an edit")
    op = e.get("op")
    if not isinstance(op, str) or op not in _EDIT_FIELDS:
        raise ValidationError("op must be create, update, patch or delete", field="op")
    for name in e:
        if name not in _EDIT_FIELDS[op]:
            raise ValidationError(f"a {op} edit has no {name!r}", field=name)
    if_match = e.get("if_match")
    if if_match is not None and not isinstance(if_match, str):
        raise ValidationError("if_match must be a string", field="if_match")
    meta = served.meta
    if op == "create":
        item = _object(e.get("item"), "item")
        _only(item, served.create_attrs, meta, "create")
        # a malformed item fails the request, not just the edit (values the policy fills in
        # need not be given)
        meta.from_builtins({**_forced(store), **item})
        return Edit.create(item)
    if op == "update":
        item = _object(e.get("item"), "item")
        _only(item, served.update_attrs, meta, "update")
        missing = [a for a in meta.key.attrs if a not in item]
        if missing:
            raise ValidationError(f"{meta.name}.{missing[0]}: the key is required",
                                  field=missing[0])
        item_key = meta.key_string(tuple(a.coerce(item[a.name]) for a in meta.key_attrs))
        full = await _full_item(served, store, item_key, item)
        return Edit.update(full if full is not None else meta.from_builtins(item),
                           if_match=if_match, precondition=_precondition(e))
    key = e.get("key")
    if not isinstance(key, str):
        raise ValidationError("key must be a string", field="key")
    meta.parse_key(key)
    if op == "patch":
        changes = _object(e.get("changes"), "changes")
        _only(changes, served.patch_attrs, meta, "patch")
        check_values(meta, changes)
        return Edit.patch(key, changes, if_match=if_match, precondition=_precondition(e))
    return Edit.delete(key, if_match=if_match, precondition=_precondition(e))


async def login_route(api: Api, request: Request) -> Response:
    assert api.login is not None and api.auth is not None
    data = _object(await read_json(request, api.limits), "the request")
    _fields(data, {"username", "password"})
    username: Any = data.get("username")
    password: Any = data.get("password")
    if not isinstance(username, str) or not username:
        raise ValidationError("username must be a non-empty string", field="username")
    if not isinstance(password, str):
        raise ValidationError("password must be a string", field="password")
    scopes = api.login.authenticate(username, password)
    token = api.auth.issue(username, scopes)
    return JSONResponse({"access_token": token, "token_type": "bearer",
                         "expires_in": int(api.auth.expires_in.total_seconds())})


# ---- wiring -------------------------------------------------------------------------------


def _wrap(api: Api, served: Served | None, fn: Handler | Callable[..., Awaitable[Response]]
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


def _served(cls: Any, policies: Mapping[Any, Any], anonymous: Any,
            cache_control: Any) -> Served:
    meta = meta_of(cls)
    policy = policies.get(cls, policies.get(meta.name))
    anon = anonymous if isinstance(anonymous, bool) else (
        cls in anonymous or meta.name in anonymous)
    if isinstance(cache_control, Mapping):
        cc = cache_control.get(cls, cache_control.get(meta.name))
    else:
        cc = cache_control
    hidden = frozenset(a.name for a in meta.attrs if not a.readable)
    return Served(
        cls=cls, meta=meta, policy=policy, anonymous=anon, cache_control=cc, hidden=hidden,
        create_attrs=frozenset(meta.json_schema("create")["properties"]),
        update_attrs=frozenset(meta.json_schema("update")["properties"]),
        patch_attrs=frozenset(meta.json_schema("patch")["properties"]),
    )


def routes(db: AsyncDatabase, stores: Iterable[type[Any]], *, auth: JWTAuth | None = None,
           policies: Mapping[Any, Any] | None = None, anonymous: Iterable[Any] | bool = (),
           login: DemoAuthenticator | None = None, cache_control: Any = None,
           prefix: str = "/api", max_limit: int = 1000, title: str = "persisty",
           graphql: bool = True, docs: bool = True,
           links: Iterable[Link] = (), limits: Limits | None = None,
           files: Mapping[str, Any] | None = None,
           file_policies: Mapping[str, Any] | None = None,
           file_anonymous: Iterable[str] | bool = (), file_redirect: Iterable[str] | bool = False,
           ) -> tuple[Api, list[BaseRoute]]:
    """The :class:`Api` and its routes (see :func:`app` for the arguments)."""
    if not isinstance(db, AsyncDatabase):
        raise TypeError(
            f"the API serves an async database, not {type(db).__name__}: open it with "
            "persisty.aio.connect(url) (persisty.connect gives a sync one)")
    if limits is not None and not isinstance(limits, Limits):
        raise TypeError("limits must be a persisty.serve.Limits")
    if login is not None and (auth is None or auth.secret is None):
        raise ValidationError("login needs auth=JWTAuth(secret=...) to issue tokens",
                              field="login")
    prefix = "/" + prefix.strip("/") if prefix.strip("/") else ""
    policies = dict(policies or {})
    anon = anonymous if isinstance(anonymous, bool) else list(anonymous)
    if auth is None and anonymous == ():
        anon = True
    served: dict[str, Served] = {}
    for cls in stores:
        s = _served(cls, policies, anon, cache_control)
        if s.name in served:
            raise ValidationError(f"two stores are named {s.name!r}", field="stores")
        served[s.name] = s
    if policies:
        import persisty.layers  # noqa: F401 - fail early when the layer is missing
    api = Api(db, served, auth=auth, login=login, prefix=prefix, max_limit=max_limit,
              title=title, limits=limits or DEFAULT_LIMITS)
    relations: dict[str, dict[str, tuple[str, str]]] = {}
    has_many: dict[str, dict[str, tuple[str, str, bool]]] = {}
    from persisty.layers import relations_of

    for s in served.values():  # relations declared on the classes (BelongsTo, HasMany, HasOne)
        declared = relations_of(s.cls)
        s.related = bool(declared)
        for rel_name, rel in declared.items():
            target = meta_of(rel.target)
            if target.name not in served:
                continue
            if rel.kind == "belongs_to":
                relations.setdefault(s.name, {})[rel_name] = (rel.foreign_key, target.name)
            else:
                has_many.setdefault(s.name, {})[rel_name] = (target.name, rel.foreign_key,
                                                              not rel.many)
    for link in links:
        src, dst = meta_of(link.source), meta_of(link.target)
        if src.name not in served or dst.name not in served:
            raise ValidationError(f"link {src.name}.{link.attr}: both stores must be served",
                                  field="links")
        src.attr(link.attr)
        if len(dst.key.attrs) != 1:
            raise ValidationError(f"link to {dst.name}: the target needs a one-attribute key",
                                  field="links")
        relations.setdefault(src.name, {})[link.field_name()] = (link.attr, dst.name)
        if link.back:
            has_many.setdefault(dst.name, {})[link.back] = (src.name, link.attr, False)
    api.extra["relations"] = relations
    api.extra["has_many"] = has_many
    result: list[BaseRoute] = []
    if login is not None:
        result.append(Route(f"{prefix}/_login", _wrap(api, None, login_route),
                            methods=["POST"]))
    for s in served.values():
        base = f"{prefix}/{s.name}"
        result += [
            _route(base, api, s, {"GET": search, "POST": create}),
            _route(base + "/_count", api, s, {"GET": count}),
            _route(base + "/_batch/read", api, s, {"POST": batch_read}),
            _route(base + "/_batch/edit", api, s, {"POST": batch_edit}),
            _route(base + "/{key:persisty_key}", api, s,
                   {"GET": read, "PUT": replace, "PATCH": patch, "DELETE": delete}),
        ]
    from persisty.serve._files_access import file_mounts
    from persisty.serve._files_http import file_routes

    mounts = file_mounts(dict(files) if files is not None else None, file_policies,
                         file_anonymous if isinstance(file_anonymous, bool)
                         else list(file_anonymous), redirect=file_redirect if isinstance(
                             file_redirect, bool) else list(file_redirect))
    api.extra["files"] = mounts
    result += file_routes(api, mounts)
    from persisty.serve._openapi import openapi, swagger_html

    spec_cache: dict[str, Any] = {}

    async def openapi_json(request: Request) -> Response:
        if "spec" not in spec_cache:
            spec_cache["spec"] = openapi(api)
        return JSONResponse(spec_cache["spec"])

    result.append(Route(f"{prefix}/openapi.json", openapi_json, methods=["GET"],
                        include_in_schema=False))

    async def index(request: Request) -> Response:
        return JSONResponse({
            "stores": {n: {"href": f"{api.prefix}/{n}", "description": s.meta.description}
                       for n, s in api.served.items()},
            "openapi": f"{api.prefix}/openapi.json",
            "docs": "/docs" if docs else None, "graphql": "/graphql" if graphql else None,
        })

    result.append(Route(prefix or "/", index, methods=["GET"], include_in_schema=False))
    if prefix:
        result.append(_root_route(api, docs=docs, graphql=graphql))
    if docs or graphql:
        from persisty.serve._static import static_route

        result.append(static_route())
    if docs:
        async def docs_page(request: Request) -> Response:
            # relative: the page also works when the routes are mounted under a path
            spec = f"{api.prefix.lstrip('/')}/openapi.json"
            return HTMLResponse(swagger_html(spec, api.title))

        result.append(Route("/docs", docs_page, methods=["GET"], include_in_schema=False))
    if graphql:
        from persisty.serve._graphql import graphql_route

        result.append(graphql_route(api))
    return api, result



def _root_route(api: Api, *, docs: bool, graphql: bool) -> Route:
    """``GET /``: where the API, its docs and GraphQL are (a page of links for a browser)."""
    links = {"api": api.prefix, "openapi": f"{api.prefix}/openapi.json",
             "docs": "/docs" if docs else None, "graphql": "/graphql" if graphql else None}

    async def root(request: Request) -> Response:
        if "text/html" in request.headers.get("accept", ""):
            items = "".join(f'<li><a href="{url.lstrip("/")}">{name}</a>: {url}</li>'
                            for name, url in links.items() if url)
            return HTMLResponse(f"<!doctype html><html><head><meta charset=\"utf-8\">"
                                f"<title>{html.escape(api.title)}</title></head><body>"
                                f"<h1>{html.escape(api.title)}</h1><ul>{items}</ul>"
                                f"</body></html>")
        return JSONResponse(links)

    return Route("/", root, methods=["GET"], include_in_schema=False)


def router(db: AsyncDatabase, stores: Iterable[type[Any]], **options: Any) -> Router:
    """The API's routes as a Starlette ``Router``, to mount in an existing application.

    Takes the arguments of :func:`app`. With FastAPI: ``fastapi_app.mount("/", router(...))``;
    with Starlette: ``Mount("/", routes=router(...).routes)``.

    Example::

        from starlette.applications import Starlette
        from starlette.routing import Mount
        from persisty.serve import router

        site = Starlette(routes=[Mount("/data", router(db, [Note]))])   # /data/api/note
    """
    _, rs = routes(db, stores, **options)
    return Router(routes=rs)


def app(db: AsyncDatabase, stores: Iterable[type[Any]], *, auth: JWTAuth | None = None,
        policies: Mapping[Any, Any] | None = None, anonymous: Iterable[Any] | bool = (),
        login: DemoAuthenticator | None = None, cache_control: Any = None,
        cors: bool | Sequence[str] | Mapping[str, Any] | None = None, prefix: str = "/api",
        max_limit: int = 1000, title: str = "persisty", graphql: bool = True,
        docs: bool = True, links: Iterable[Link] = (), limits: Limits | None = None,
        files: Mapping[str, Any] | None = None, file_policies: Mapping[str, Any] | None = None,
        file_anonymous: Iterable[str] | bool = (), file_redirect: Iterable[str] | bool = False,
        on_startup: Sequence[Callable[[], Any]] = (),
        close_database: bool = True, debug: bool = False) -> Starlette:
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
    database is closed on shutdown.

    ``files`` maps names to async file stores, served under ``{prefix}/_files/{name}``
    (downloads with ranges and conditional requests, signed URLs, PUT, DELETE, list, count,
    copy, upload grants; see ``docs/files.md``); ``file_policies`` maps a name to a
    ``Policy`` over ``persisty.files.FileInfo`` (``Policy.owner("owner")``);
    ``file_anonymous`` names the file stores callers without credentials may read;
    ``file_redirect`` the S3 ones that answer downloads with a 302 to a presigned URL.

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
    api, rs = routes(db, stores, auth=auth, policies=policies, anonymous=anonymous,
                     login=login, cache_control=cache_control, prefix=prefix,
                     max_limit=max_limit, title=title, graphql=graphql, docs=docs,
                     links=links, limits=limits, files=files, file_policies=file_policies,
                     file_anonymous=file_anonymous, file_redirect=file_redirect)
    middleware = []
    if cors:
        if cors is True:
            options: dict[str, Any] = {"allow_origins": ["*"]}
        elif isinstance(cors, Mapping):
            options = dict(cors)
        else:
            options = {"allow_origins": list(cors)}
        options.setdefault("allow_methods", ["GET", "POST", "PUT", "PATCH", "DELETE"])
        options.setdefault("allow_headers", ["Authorization", "Content-Type", "If-Match",
                                             "If-None-Match"])
        options.setdefault("expose_headers", ["ETag", "Location"])
        middleware.append(Middleware(CORSMiddleware, **options))

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "error")
        return JSONResponse({"code": code, "message": str(exc.detail), "field": None},
                            status_code=exc.status_code, headers=exc.headers)

    async def server_error(request: Request, exc: Exception) -> Response:
        return JSONResponse({"code": "internal_error", "message": "internal server error",
                             "field": None}, status_code=500)

    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def lifespan(_: Starlette) -> Any:
        for fn in on_startup:
            result = fn()
            if hasattr(result, "__await__"):
                await result
        # what exists once the app has started (modules, schema, stores) lives as long as
        # the process: frozen, the collector's full passes no longer walk it, and a large
        # response no longer pauses every request for a walk of the whole heap
        gc.freeze()
        yield
        gc.unfreeze()
        if close_database:
            for mount in api.extra.get("files", {}).values():
                await mount.files.close()
            await db.close()

    asgi = Starlette(debug=debug, routes=rs,
                     middleware=middleware, lifespan=lifespan,
                     exception_handlers={HTTPException: http_error, 500: server_error})
    asgi.state.persisty = api
    return asgi
