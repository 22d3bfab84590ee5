"""GraphQL (graphql-core) generated from store metadata: per store a read, search, count and
read-batch query and create, update, patch, delete and edit-batch mutations."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import decimal
import enum
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import msgspec
from graphql import (
    ExecutionResult,
    GraphQLArgument,
    GraphQLBoolean,
    GraphQLEnumType,
    GraphQLError,
    GraphQLField,
    GraphQLFloat,
    GraphQLInputField,
    GraphQLInputObjectType,
    GraphQLInt,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLSchema,
    GraphQLString,
    OperationType,
    execute,
    get_operation_ast,
    parse,
    validate,
)
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from persisty.errors import PersistyError, ValidationError
from persisty.model._attr import AttrMeta
from persisty.query import ALL, And, Compare, Filter, Not, Op, Or, TextQuery
from persisty.serve._graphql_executor import SharingExecutor

if TYPE_CHECKING:
    from persisty.serve._app import Api, Served

Info = Any
_SCALARS = {"str", "int", "float", "bool", "datetime", "date", "uuid", "decimal", "bytes", "enum"}
_ORDERED = {"str", "int", "float", "datetime", "date", "uuid", "decimal", "bytes", "enum", "bool"}
_STRING_OPS = (Op.CONTAINS, Op.ICONTAINS, Op.STARTSWITH, Op.ISTARTSWITH, Op.ENDSWITH,
               Op.IENDSWITH)


def _text(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, uuid.UUID | decimal.Decimal):
        return str(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, enum.Enum):
        return value.value
    return value


def _scalar(name: str, description: str) -> GraphQLScalarType:
    return GraphQLScalarType(name, description=description, serialize=_text,
                             parse_value=lambda v: v)


DATETIME = _scalar("DateTime", "An ISO 8601 date and time (UTC)")
DATE = _scalar("Date", "An ISO 8601 date")
UUID = _scalar("UUID", "A UUID in its text form")
DECIMAL = _scalar("Decimal", "A decimal number as a string")
BYTES = _scalar("Bytes", "Binary data, base64")
ENUM = _scalar("EnumValue", "The value of an enumeration")
JSON = GraphQLScalarType("JSON", description="Any JSON value",
                         serialize=lambda v: msgspec.to_builtins(v), parse_value=lambda v: v)

_KIND_TYPES: dict[str, Any] = {
    "str": GraphQLString, "int": GraphQLInt, "float": GraphQLFloat, "bool": GraphQLBoolean,
    "datetime": DATETIME, "date": DATE, "uuid": UUID, "decimal": DECIMAL, "bytes": BYTES,
    "enum": ENUM,
}


def _camel(name: str) -> str:
    first, *rest = name.split("_")
    return first + "".join(p[:1].upper() + p[1:] for p in rest)


def _pascal(name: str) -> str:
    return "".join(p[:1].upper() + p[1:] for p in name.split("_"))


def _type_of(a: AttrMeta) -> Any:
    if a.kind in _KIND_TYPES:
        return _KIND_TYPES[a.kind]
    if a.kind == "list" and a.item_kind in _KIND_TYPES:
        return GraphQLList(_KIND_TYPES[a.item_kind])
    return JSON


def _field_type(a: AttrMeta) -> Any:
    t = _type_of(a)
    return t if a.optional else GraphQLNonNull(t)


def _to_gql_error(e: Exception) -> GraphQLError:
    if isinstance(e, PersistyError):
        return GraphQLError(e.message, original_error=e,
                            extensions={"code": e.code, "field": e.field})
    return GraphQLError(str(e), original_error=e)


class _Loader:
    """Batches the reads of one request's resolvers: keys asked for in the same tick of the
    event loop are read with one ``read_batch`` (one per store and level of the query)."""

    def __init__(self, load: Callable[[list[str]], Any]) -> None:
        self.load = load
        self.pending: dict[str, list[asyncio.Future[Any]]] = {}
        self.loaded: dict[str, Any] = {}  # a key read once in a request is not read again
        self.scheduled = False

    def get(self, key: str) -> Any:
        """The loaded value of ``key`` when it is known (no task, no future: large results
        stay cheap), else a future of it."""
        if key in self.loaded:
            return self.loaded[key]
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()
        self.pending.setdefault(key, []).append(fut)
        if not self.scheduled:
            self.scheduled = True
            loop.call_soon(lambda: asyncio.ensure_future(self._dispatch()))
        return fut

    async def _dispatch(self) -> None:
        pending, self.pending, self.scheduled = self.pending, {}, False
        keys = list(pending)
        try:
            items = await self.load(keys)
        except Exception as e:  # delivered to every waiting resolver
            for futs in pending.values():
                for f in futs:
                    if not f.done():
                        f.set_exception(e)
            return
        woken = 0
        for k, item in zip(keys, items, strict=True):
            self.loaded[k] = item
            for f in pending[k]:
                if not f.done():
                    f.set_result(item)
                    woken += 1
                    if woken % WAKE_AT_ONCE == 0:  # wake waiters a slice at a time, so
                        await asyncio.sleep(0)     # other requests get the loop in between


class _Context:
    def __init__(self, api: Api, request: Request) -> None:
        self.api = api
        self.request = request
        self.loaders: dict[str, _Loader] = {}

    def store(self, served: Served) -> Any:
        return self.api.store(self.request, served)

    def loader(self, served: Served) -> _Loader:
        found = self.loaders.get(served.name)
        if found is None:
            store = self.store(served)
            found = self.loaders[served.name] = _Loader(store.read_batch)
        return found


WAKE_AT_ONCE = 100
"""Resolvers a loaded batch wakes in one turn of the event loop."""

DEFAULT_PAGE = 100
"""How many items a search gives without a ``limit`` (the stores' default page)."""

DEFAULT_CHILDREN = 20
"""How many children a has-many field gives without a ``limit``."""


def _children_loader(store: Any, parent: Served, attr: str, limit: int,
                     one: bool = False) -> Callable[[list[str]], Any]:
    """Loads at most ``limit`` children per parent key: one search for all the parents
    (limited to what they may have together), one limited search per parent only when that
    one did not hold them all."""

    async def load(keys: list[str]) -> list[Any]:
        found = await load_lists(keys)
        return [(f[0] if f else None) for f in found] if one else found

    async def load_lists(keys: list[str]) -> list[list[Any]]:
        values = [parent.meta.parse_key(k)[0] for k in keys]
        cap = len(values) * limit
        page = await store.search(Compare(attr, Op.IN, tuple(values)), None, cap)
        found: dict[Any, list[Any]] = {}
        for child in page.items:
            found.setdefault(getattr(child, attr), []).append(child)
        if page.next_page_key is None:
            return [found.get(v, [])[:limit] for v in values]
        pages = await asyncio.gather(*(store.search(Compare(attr, Op.EQ, v), None, limit)
                                       for v in values))
        return [list(p.items) for p in pages]

    return load


class _Builder:
    def __init__(self, api: Api) -> None:
        self.api = api
        self.types: dict[str, GraphQLObjectType] = {}
        self.filters: dict[str, tuple[GraphQLInputObjectType, dict[str, tuple[str, Op]]]] = {}

    # ---- types ------------------------------------------------------------------------

    def object_type(self, s: Served) -> GraphQLObjectType:
        title = s.meta.cls.__name__
        if title in self.types:
            return self.types[title]

        def fields() -> dict[str, GraphQLField]:
            result = {a.name: GraphQLField(_field_type(a), description=a.description)
                      for a in s.meta.attrs if a.readable}
            result["_key"] = GraphQLField(GraphQLNonNull(GraphQLString),
                                          resolve=lambda item, info: s.meta.key_of(item))
            result["_etag"] = GraphQLField(GraphQLNonNull(GraphQLString),
                                           resolve=lambda item, info: self.api.etag(s, item))
            result.update(self.relation_fields(s))
            return result

        t = GraphQLObjectType(title, fields, description=s.meta.description)
        self.types[title] = t
        return t

    def relation_fields(self, s: Served) -> dict[str, GraphQLField]:
        """Nested fields for the relations declared on the classes (``BelongsTo``,
        ``HasMany``, ``HasOne``) and the ``links`` given to ``app``: each is resolved with
        one batched read per relation and level of the query."""
        links = self.api.extra.get("relations", {}).get(s.name, {})
        result: dict[str, GraphQLField] = {}
        for field_name, (attr, target_name) in links.items():
            target = self.api.served[target_name]
            result[field_name] = GraphQLField(
                self.object_type(target), resolve=self._belongs_to(attr, target))
        back = self.api.extra.get("has_many", {}).get(s.name, {})
        for field_name, (target_name, attr, one) in back.items():
            target = self.api.served[target_name]
            if one:
                result[field_name] = GraphQLField(
                    self.object_type(target), resolve=self._has_many(s, target, attr, True))
                continue
            result[field_name] = GraphQLField(
                GraphQLNonNull(GraphQLList(GraphQLNonNull(self.object_type(target)))),
                args={"limit": GraphQLArgument(GraphQLInt)},
                resolve=self._has_many(s, target, attr, False))
        return result

    def _belongs_to(self, attr: str, target: Served) -> Callable[..., Any]:
        def resolve(item: Any, info: Info) -> Any:
            value = getattr(item, attr)
            if value is None:
                return None
            key = target.meta.key_string((value,))
            return info.context.loader(target).get(key)

        return resolve

    def _has_many(self, parent: Served, target: Served, attr: str,
                  one: bool) -> Callable[..., Any]:
        api = self.api

        def resolve(item: Any, info: Info, limit: int | None = None) -> Any:
            ctx: _Context = info.context
            if one:
                limit = 1
            elif limit is None:
                limit = DEFAULT_CHILDREN
            elif not 1 <= limit <= api.max_limit:
                raise ValidationError(f"limit must be between 1 and {api.max_limit}",
                                      field="limit")
            name = f"{target.name}.{attr}.{limit}.{one}"
            loader = ctx.loaders.get(name)
            if loader is None:
                loader = ctx.loaders[name] = _Loader(_children_loader(
                    ctx.store(target), parent, attr, limit, one))
            return loader.get(parent.meta.key_of(item))

        return resolve

    def input_type(self, s: Served, shape: str) -> GraphQLInputObjectType | None:
        """The input of a shape; ``None`` when it has no attributes (GraphQL forbids empty
        input objects: e.g. nothing to patch on a store that has only its key)."""
        schema = s.meta.json_schema(shape)
        required = set(schema.get("required", []))
        fields = {}
        for name in schema["properties"]:
            a = s.meta.by_name[name]
            t = _type_of(a)
            fields[name] = GraphQLInputField(GraphQLNonNull(t) if name in required else t)
        if not fields:
            return None
        title = s.meta.cls.__name__ + shape.capitalize() + "Input"
        return GraphQLInputObjectType(title, fields)

    def filter_type(self, s: Served) -> tuple[GraphQLInputObjectType, dict[str, tuple[str, Op]]]:
        if s.name in self.filters:
            return self.filters[s.name]
        ops: dict[str, tuple[str, Op]] = {}
        title = s.meta.cls.__name__ + "Filter"

        def fields() -> dict[str, GraphQLInputField]:
            result: dict[str, GraphQLInputField] = {}

            def add(name: str, attr: str, op: Op, t: Any, deprecated: str | None = None) -> None:
                if (name not in result and name not in s.meta.by_name) or name == attr:
                    result[name] = GraphQLInputField(t, deprecation_reason=deprecated)
                    ops[name] = (attr, op)

            def add_op(attr: str, op: Op, t: Any) -> None:
                # one rule with REST's query string: attribute, two underscores, operator
                # (owner__ne); the earlier one-underscore names stay accepted
                add(f"{attr}__{op.value}", attr, op, t)
                add(f"{attr}_{op.value}", attr, op, t, f"use {attr}__{op.value}")

            for a in s.meta.attrs:
                if not a.readable:
                    continue
                if a.kind in _SCALARS:
                    t = _KIND_TYPES[a.kind]
                    add(a.name, a.name, Op.EQ, t)
                    add_op(a.name, Op.NE, t)
                    add_op(a.name, Op.IN, GraphQLList(t))
                    if a.kind in _ORDERED:
                        for op in (Op.LT, Op.LTE, Op.GT, Op.GTE):
                            add_op(a.name, op, t)
                    if a.kind == "str":
                        for op in _STRING_OPS:
                            add_op(a.name, op, GraphQLString)
                elif a.kind == "list" and a.item_kind in _KIND_TYPES:
                    add_op(a.name, Op.CONTAINS, _KIND_TYPES[a.item_kind])
                add_op(a.name, Op.EXISTS, GraphQLBoolean)
            me = self.filters[s.name][0]
            result["and"] = GraphQLInputField(GraphQLList(GraphQLNonNull(me)))
            result["or"] = GraphQLInputField(GraphQLList(GraphQLNonNull(me)))
            result["not"] = GraphQLInputField(me)
            result["q"] = GraphQLInputField(GraphQLString, description="free-text search")
            return result

        t = GraphQLInputObjectType(title, fields)
        self.filters[s.name] = (t, ops)
        return t, ops

    # ---- fields -----------------------------------------------------------------------

    def build(self) -> GraphQLSchema:
        query: dict[str, GraphQLField] = {}
        mutation: dict[str, GraphQLField] = {}
        for s in self.api.served.values():
            self.add_store(s, query, mutation)
        return GraphQLSchema(
            GraphQLObjectType("Query", query),
            GraphQLObjectType("Mutation", mutation) if mutation else None,
        )

    def add_store(self, s: Served, query: dict[str, GraphQLField],
                  mutation: dict[str, GraphQLField]) -> None:
        t = self.object_type(s)
        filt, ops = self.filter_type(s)
        camel, pascal = _camel(s.name), _pascal(s.name)
        title = s.meta.cls.__name__
        page = GraphQLObjectType(title + "Page", {
            "items": GraphQLField(GraphQLNonNull(GraphQLList(GraphQLNonNull(t)))),
            "next_page_key": GraphQLField(GraphQLString),
        })
        result_t = GraphQLObjectType(title + "EditResult", {
            "ok": GraphQLField(GraphQLNonNull(GraphQLBoolean)),
            "code": GraphQLField(GraphQLString), "message": GraphQLField(GraphQLString),
            "field": GraphQLField(GraphQLString), "item": GraphQLField(t),
        })
        create_in = self.input_type(s, "create")
        update_in = self.input_type(s, "update")
        patch_in = self.input_type(s, "patch")
        edit_in = GraphQLInputObjectType(title + "EditInput", {
            "op": GraphQLInputField(GraphQLNonNull(EDIT_OP)),
            "item": GraphQLInputField(JSON, description="create/update: the item"),
            "key": GraphQLInputField(GraphQLString, description="patch/delete: the key"),
            "changes": GraphQLInputField(patch_in or JSON, description="patch: the changes"),
            "if_match": GraphQLInputField(GraphQLString),
        })
        key_arg = {"key": GraphQLArgument(GraphQLNonNull(GraphQLString))}
        if_match = {"if_match": GraphQLArgument(GraphQLString)}
        search_args = {
            "filter": GraphQLArgument(filt),
            "order": GraphQLArgument(GraphQLList(GraphQLNonNull(GraphQLString)),
                                     description='e.g. ["-priority", "title"]'),
            "limit": GraphQLArgument(GraphQLInt),
            "page_key": GraphQLArgument(GraphQLString),
        }

        def to_filter(data: dict[str, Any] | None) -> Filter:
            if not data:
                return ALL
            parts: list[Filter] = []
            for name, value in data.items():
                if name in ("and", "or"):
                    subs = [to_filter(x) for x in value or []]
                    parts.append(And.of(*subs) if name == "and" else Or.of(*subs))
                elif name == "not":
                    if value is not None:
                        parts.append(Not(to_filter(value)))
                elif name == "q":
                    if value is not None:
                        parts.append(TextQuery(value))
                else:
                    attr, op = ops[name]
                    if op is Op.IN:
                        if value is None:
                            raise ValidationError(f"{attr}: in takes a list", field=attr)
                        value = tuple(value)
                    parts.append(Compare(attr, op, value))
            return And.of(*parts)

        def store(info: Info) -> Any:
            return info.context.store(s)

        async def read(_: Any, info: Info, key: str) -> Any:
            return await store(info).read(key)

        async def search(_: Any, info: Info, filter: Any = None,
                         order: Any = None, limit: int | None = None,
                         page_key: str | None = None) -> Any:
            if limit is not None and not 1 <= limit <= self.api.max_limit:
                raise ValidationError(f"limit must be between 1 and {self.api.max_limit}",
                                      field="limit")
            return await store(info).search(to_filter(filter), order, limit, page_key)

        async def count(_: Any, info: Info, filter: Any = None) -> int:
            n: int = await store(info).count(to_filter(filter))
            return n

        async def batch(_: Any, info: Info, keys: list[str]) -> Any:
            cap = self.api.limits.graphql_batch
            if len(keys) > cap:
                raise ValidationError(f"at most {cap} keys", field="keys")
            return await store(info).read_batch(keys)

        async def create(_: Any, info: Info, item: dict[str, Any]) -> Any:
            return await store(info).create(item)

        async def update(_: Any, info: Info, item: dict[str, Any],
                         if_match: str | None = None) -> Any:
            st = store(info)
            missing = [k for k in s.meta.key.attrs if item.get(k) is None]
            if missing:
                raise ValidationError(f"{s.name}.{missing[0]}: the key is required",
                                      field=missing[0])
            key = s.meta.key_string(tuple(a.coerce(item[a.name]) for a in s.meta.key_attrs))
            from persisty.serve._app import _full_item

            full = await _full_item(s, st, key, item)
            if full is None:
                from persisty.errors import NotFound

                raise NotFound(f"no {s.name} with key {key!r}")
            return await st.update(full, if_match=await pinned(st, key, if_match))

        async def pinned(st: Any, key: str, if_match: str | None) -> str | None:
            if if_match is None:
                return None
            return (await self.api.store_tags(s, st, [(key, if_match)]))[0]

        async def patch(_: Any, info: Info, key: str, changes: dict[str, Any],
                        if_match: str | None = None) -> Any:
            st = store(info)
            return await st.patch(key, changes, if_match=await pinned(st, key, if_match))

        async def delete(_: Any, info: Info, key: str,
                         if_match: str | None = None) -> bool:
            st = store(info)
            await st.delete(key, if_match=await pinned(st, key, if_match))
            return True

        async def edit_batch(_: Any, info: Info, edits: list[dict[str, Any]],
                             atomic: bool = True) -> Any:
            from persisty.serve._app import _edit, pin_edits

            st = store(info)
            cap = self.api.limits.graphql_batch
            if len(edits) > cap:
                raise ValidationError(f"at most {cap} edits", field="edits")
            parsed = [await _edit(s, st, {k: v for k, v in e.items() if v is not None})
                      for e in edits]
            await pin_edits(self.api, s, st, parsed)
            return await st.edit_batch(parsed, atomic=atomic)

        query[camel] = GraphQLField(t, args=key_arg, resolve=read,
                                    description=f"The {s.name} with this key, or null")
        query[camel + "Search"] = GraphQLField(GraphQLNonNull(page), args=search_args,
                                               resolve=search)
        query[camel + "Count"] = GraphQLField(GraphQLNonNull(GraphQLInt),
                                              args={"filter": GraphQLArgument(filt)},
                                              resolve=count)
        query[camel + "Batch"] = GraphQLField(
            GraphQLNonNull(GraphQLList(t)),
            args={"keys": GraphQLArgument(GraphQLNonNull(GraphQLList(
                GraphQLNonNull(GraphQLString))))}, resolve=batch)
        if create_in is not None:
            mutation["create" + pascal] = GraphQLField(
                GraphQLNonNull(t), args={"item": GraphQLArgument(GraphQLNonNull(create_in))},
                resolve=create)
        if update_in is not None:
            mutation["update" + pascal] = GraphQLField(
                GraphQLNonNull(t), args={"item": GraphQLArgument(GraphQLNonNull(update_in)),
                                         **if_match}, resolve=update)
        if patch_in is not None:
            mutation["patch" + pascal] = GraphQLField(
                GraphQLNonNull(t), args={**key_arg, "changes": GraphQLArgument(
                    GraphQLNonNull(patch_in)), **if_match}, resolve=patch)
        mutation["delete" + pascal] = GraphQLField(
            GraphQLNonNull(GraphQLBoolean), args={**key_arg, **if_match}, resolve=delete)
        mutation["edit" + pascal + "Batch"] = GraphQLField(
            GraphQLNonNull(GraphQLList(GraphQLNonNull(result_t))),
            args={"edits": GraphQLArgument(GraphQLNonNull(GraphQLList(GraphQLNonNull(
                edit_in)))), "atomic": GraphQLArgument(GraphQLBoolean, default_value=True)},
            resolve=edit_batch)


EDIT_OP = GraphQLEnumType("EditOp", {"create": "create", "update": "update",
                                     "patch": "patch", "delete": "delete"})


def build_schema(api: Api) -> GraphQLSchema:
    """The GraphQL schema of ``api``'s stores (served at ``/graphql``).

    Example::

        from graphql import print_schema
        asgi = persisty.serve.app(db, [Note])
        print(print_schema(persisty.serve.build_schema(asgi.state.persisty)))
    """
    return _Builder(api).build()


def _graphiql_html() -> str:
    """GraphiQL; its assets (React, ReactDOM, GraphiQL) are the package's own (``_static/``)."""
    from persisty.serve._static import GRAPHIQL, REACT, REACT_DOM, asset

    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>GraphiQL</title>
<link rel="stylesheet" href="{asset(GRAPHIQL + '/graphiql.min.css')}">
</head><body style="margin:0"><div id="graphiql" style="height:100vh"></div>
<script src="{asset(REACT + '/react.production.min.js')}"></script>
<script src="{asset(REACT_DOM + '/react-dom.production.min.js')}"></script>
<script src="{asset(GRAPHIQL + '/graphiql.min.js')}"></script>
<script>
const fetcher = GraphiQL.createFetcher({{url: window.location.pathname}});
ReactDOM.createRoot(document.getElementById("graphiql"))
  .render(React.createElement(GraphiQL, {{fetcher}}));
</script></body></html>"""


_GRAPHIQL = _graphiql_html()


async def _awaited(value: Any) -> ExecutionResult:
    if isinstance(value, ExecutionResult):
        return value
    result: ExecutionResult = await value
    return result


def graphql_route(api: Api, path: str = "/graphql") -> Route:
    """``GET`` (GraphiQL for browsers, or ``?query=`` for queries) and ``POST`` of GraphQL.

    Every operation is checked against ``api.limits`` before it runs (document size, root
    fields, depth, cost, nesting of variables) and stopped after ``graphql_timeout``."""
    from persisty.serve._app import BadRequest, JSONResponse, error_response, read_json
    from persisty.serve._graphql_limits import check_operation
    from persisty.serve._limits import decode_json, too_deep

    schema = build_schema(api)
    limits = api.limits

    def refused(errors: list[GraphQLError], status: int = 400) -> Response:
        return JSONResponse({"data": None, "errors": [e.formatted for e in errors]},
                            status_code=status)

    async def endpoint(request: Request) -> Response:
        try:
            if request.method == "GET":
                if "query" not in request.query_params:
                    return HTMLResponse(_GRAPHIQL)
                body: Any = dict(request.query_params)
                if "variables" in body:
                    body["variables"] = decode_json(body["variables"], limits, "variables")
            else:
                body = await read_json(request, limits)
            if not isinstance(body, dict) or not isinstance(body.get("query"), str):
                raise BadRequest("send {\"query\": ..., \"variables\": {...}}")
            variables = body.get("variables")
            if variables is not None and not isinstance(variables, dict):
                raise BadRequest("variables must be an object")
            if variables and too_deep(variables, limits.max_depth):
                raise ValidationError(f"variables nest deeper than {limits.max_depth} levels",
                                      field="variables")
            op_name = body.get("operationName")
            if op_name is not None and not isinstance(op_name, str):
                raise BadRequest("operationName must be a string")
            try:
                doc = parse(body["query"], max_tokens=limits.graphql_tokens)
            except GraphQLError as e:
                if "tokens" in e.message:  # the document is longer than graphql_tokens
                    e.extensions = {"code": "too_large"}
                return refused([e])
            except RecursionError:
                return refused([GraphQLError("the document nests too deeply",
                                             extensions={"code": "too_deep"})])
            op = get_operation_ast(doc, op_name)
            if request.method == "GET" and op is not None and (
                    op.operation != OperationType.QUERY):
                raise BadRequest("mutations need POST")
            if op is not None:  # before validation, which is quadratic in some shapes
                over = check_operation(schema, doc, op, variables, limits,
                                       default_limit=DEFAULT_PAGE, max_limit=api.max_limit,
                                       default_children=DEFAULT_CHILDREN)
                if over:
                    return refused(over)
            try:
                invalid = validate(schema, doc)
            except RecursionError:
                invalid = [GraphQLError("the document nests too deeply",
                                        extensions={"code": "too_deep"})]
            if invalid:
                return refused(invalid)
            run = execute(schema, doc, context_value=_Context(api, request),
                          variable_values=variables, operation_name=op_name,
                          executor_class=SharingExecutor)
            try:
                result = await asyncio.wait_for(_awaited(run), limits.graphql_timeout)
            except TimeoutError:
                return refused([GraphQLError(
                    f"the query ran longer than {limits.graphql_timeout:g} s and was stopped",
                    extensions={"code": "timeout"})], 503)
        except PersistyError as e:
            return error_response(e, anonymous=api.is_anonymous(request))
        out: dict[str, Any] = {"data": result.data}
        if result.errors:
            errs = []
            for err in result.errors:
                formatted = err.formatted
                orig = err.original_error
                if isinstance(orig, PersistyError):
                    code = orig.code
                    if code == "forbidden" and api.is_anonymous(request):
                        code = "unauthorized"
                    formatted["extensions"] = {"code": code, "field": orig.field}
                elif orig is not None:
                    formatted["message"] = "internal server error"
                    formatted["extensions"] = {"code": "internal_error"}
                errs.append(formatted)
            out["errors"] = errs
        status = 200 if result.data is not None or not result.errors else 400
        return JSONResponse(out, status_code=status)

    return Route(path, endpoint, methods=["GET", "POST"], include_in_schema=False)
