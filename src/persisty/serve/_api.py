"""What the REST and GraphQL sides of the API share: the served stores, the caller's view of
them, ETags, errors as JSON, and the reading of items and edits from request bodies."""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import quote

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from persisty._version import __version__
from persisty.errors import Forbidden, PersistyError, Unauthorized, ValidationError
from persisty.layers import Policy, secured
from persisty.layers import related as related_layer
from persisty.model import StoreMeta, etag, meta_of
from persisty.query import NONE, Filter, filter_from_json
from persisty.serve._auth import ANONYMOUS_SUBJECT, DemoAuthenticator, JWTAuth, make_principal
from persisty.serve._limits import BadRequest, Limits, decode_json, read_body
from persisty.store import AsyncDatabase, AsyncStore, Edit

if TYPE_CHECKING:  # the file routes build on this module
    from persisty.serve._files_access import FileMount

DEFAULT_LIMITS = Limits()

MAX_BATCH = 1000
"""The most keys or edits one REST batch request may carry."""

ENCODER = msgspec.json.Encoder()


class JSONResponse(Response):
    """A JSON response encoded with msgspec (dataclass items, datetimes, UUIDs …)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return ENCODER.encode(content)


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
    wrap: Callable[[AsyncStore[Any], Request], AsyncStore[Any]] | None = None
    """A last layer of the caller's view (the ``FileRef`` checks of ``_files_refs``)."""
    route_name: str | None = None
    """The name it is served under when that is not the store's (a runtime-defined store,
    whose data lives in a store named after its data generation)."""

    @property
    def name(self) -> str:
        return self.route_name or self.meta.name


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
    links: tuple[Link, ...] = ()
    limits: Limits = DEFAULT_LIMITS
    files: dict[str, FileMount] = field(default_factory=dict)

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
            base = served.base if served.base is not None else self.db.store(served.cls)
            if served.related:  # declared relations: batched loads, integrity on delete
                base = related_layer(base, lambda cls: self._related_view(request, cls))
            found = self._view(request, served, base)
            if served.wrap is not None:
                found = served.wrap(found, request)
            views[served.name] = found
        return found  # type: ignore[no-any-return]

    def _view(
        self, request: Request, served: Served, base: AsyncStore[Any] | None = None
    ) -> AsyncStore[Any]:
        """``base`` (by default ``served``'s store) under the caller's policy."""
        if base is None:
            base = served.base if served.base is not None else self.db.store(served.cls)
        raw = base
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
        digest = self.db.pages.mac("etag:" + served.name, ENCODER.encode(view))
        return base64.urlsafe_b64encode(digest[:18]).decode()

    async def store_tags(
        self, served: Served, store: AsyncStore[Any], wanted: Sequence[tuple[str, str]]
    ) -> list[str]:
        """For each (key, served ETag), the store's etag to write with: the current one when
        the served ETag matches the item as the caller sees it now, else one that never
        matches (the write then fails its precondition)."""
        if not wanted:
            return []
        keys = [k for k, _ in wanted]
        current = await store.read_batch(keys)
        return [
            etag(c) if c is not None and self.etag(served, c) == tag else _NO_MATCH
            for c, (_, tag) in zip(current, wanted, strict=True)
        ]

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


_READ_ONLY = Policy.read_only()
_NOTHING = Policy(read=NONE, create=NONE, update=NONE, delete=NONE)
_NO_MATCH = "\x00no-match"


def error_response(
    e: PersistyError, *, anonymous: bool = False, headers: Mapping[str, str] | None = None
) -> JSONResponse:
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


def json_object(data: Any, what: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ValidationError(f"{what} must be a JSON object, not {type(data).__name__}")
    return data


def check_fields(data: Mapping[str, Any], allowed: set[str]) -> None:
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


def only_attrs(
    data: Mapping[str, Any], allowed: frozenset[str], meta: StoreMeta, shape: str
) -> None:
    for name in data:
        if name not in allowed:
            if name in meta.by_name:
                raise ValidationError(f"{meta.name}.{name} cannot be set on {shape}", field=name)
            raise ValidationError(f"{meta.name} has no attribute {name!r}", field=name)


def precondition_of(data: Mapping[str, Any]) -> Filter | None:
    raw = data.get("precondition")
    return None if raw is None else filter_from_json(raw)


async def full_item(served: Served, store: AsyncStore[Any], key: str, data: dict[str, Any]) -> Any:
    """The item a PUT describes: the body, plus what the update shape cannot change taken
    from the stored item; ``None`` when no item has ``key``."""
    current = await store.read(key)
    if current is None:
        return None
    base = msgspec.to_builtins(current)
    keep = {k: v for k, v in base.items() if k not in served.update_attrs}
    return served.meta.from_builtins({**keep, **data})


_EDIT_FIELDS = {
    "create": frozenset({"op", "item"}),
    "update": frozenset({"op", "item", "if_match", "precondition"}),
    "patch": frozenset({"op", "key", "changes", "if_match", "precondition"}),
    "delete": frozenset({"op", "key", "if_match", "precondition"}),
}


async def pin_edits(
    api: Api, served: Served, store: AsyncStore[Any], edits: Sequence[Edit]
) -> None:
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


async def parse_edit(served: Served, store: AsyncStore[Any], raw: Any) -> Edit:
    e = json_object(raw, "an edit")
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
        item = json_object(e.get("item"), "item")
        only_attrs(item, served.create_attrs, meta, "create")
        # a malformed item fails the request, not just the edit (values the policy fills in
        # need not be given)
        meta.from_builtins({**_forced(store), **item})
        return Edit.create(item)
    if op == "update":
        item = json_object(e.get("item"), "item")
        only_attrs(item, served.update_attrs, meta, "update")
        missing = [a for a in meta.key.attrs if a not in item]
        if missing:
            raise ValidationError(
                f"{meta.name}.{missing[0]}: the key is required", field=missing[0]
            )
        item_key = meta.key_string(tuple(a.coerce(item[a.name]) for a in meta.key_attrs))
        full = await full_item(served, store, item_key, item)
        return Edit.update(
            full if full is not None else meta.from_builtins(item),
            if_match=if_match,
            precondition=precondition_of(e),
        )
    key = e.get("key")
    if not isinstance(key, str):
        raise ValidationError("key must be a string", field="key")
    meta.parse_key(key)
    if op == "patch":
        changes = json_object(e.get("changes"), "changes")
        only_attrs(changes, served.patch_attrs, meta, "patch")
        check_values(meta, changes)
        return Edit.patch(key, changes, if_match=if_match, precondition=precondition_of(e))
    return Edit.delete(key, if_match=if_match, precondition=precondition_of(e))
