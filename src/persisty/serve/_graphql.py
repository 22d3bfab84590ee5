"""GraphQL (graphql-core) generated from store metadata: per store a read, search, count and
read-batch query and create, update, patch, delete and edit-batch mutations."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from graphql import (
    GraphQLArgument,
    GraphQLBoolean,
    GraphQLField,
    GraphQLInputField,
    GraphQLInputObjectType,
    GraphQLInt,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLString,
)

from persisty.errors import NotFound, ValidationError
from persisty.model import StoreMeta
from persisty.query import (
    ALL,
    STRING_OPS,
    And,
    Compare,
    Filter,
    Not,
    Op,
    Or,
    TextQuery,
    ops_for,
    root_of,
    validate_filter,
)
from persisty.serve._api import Api, Served, full_item, parse_edit, pin_edits
from persisty.serve._files_graphql import add_file_fields, ref_field
from persisty.serve._graphql_loading import DEFAULT_CHILDREN, Context, Info, Loader, children_loader
from persisty.serve._graphql_relations import relation_graph
from persisty.serve._graphql_types import (
    EDIT_OP,
    JSON,
    KIND_TYPES,
    PATH_FILTER,
    camel,
    field_type,
    pascal,
    type_of,
)


def paths_field(s: Served) -> str:
    """The name of the filter field of nested paths: ``paths``, or ``_paths`` when the model
    has an attribute called ``paths``."""
    return "_paths" if "paths" in s.meta.by_name else "paths"


def path_filter(meta: StoreMeta, data: dict[str, Any]) -> Filter:
    """The comparison of one ``PathFilter`` input, its path checked against the model
    (``ValidationError`` naming it: an unknown path, an op its type does not take, a value
    that does not fit)."""
    path, op, value = data["path"], Op(data.get("op") or "eq"), data.get("value")
    root = root_of(path)
    a = meta.by_name.get(root)
    if a is None or not a.readable:
        raise ValidationError(f"{path}: {meta.name} has no attribute {root!r}", field=path)
    if op is Op.IN:
        if not isinstance(value, list):
            raise ValidationError(f"{path}: in takes a list", field=path)
        value = tuple(value)
    compare = Compare(path, op, value)
    validate_filter(compare, meta)  # the store validates it again; here for the error
    return compare


class _Builder:
    def __init__(self, api: Api) -> None:
        self.api = api
        self.graph = relation_graph(api.served, api.links)
        self.types: dict[str, GraphQLObjectType] = {}
        self.filters: dict[str, tuple[GraphQLInputObjectType, dict[str, tuple[str, Op]]]] = {}

    # ---- types ------------------------------------------------------------------------

    def object_type(self, s: Served) -> GraphQLObjectType:
        title = s.meta.cls.__name__
        if title in self.types:
            return self.types[title]

        def fields() -> dict[str, GraphQLField]:
            result = {
                a.name: GraphQLField(field_type(a), description=a.description)
                for a in s.meta.attrs
                if a.readable
            }
            for a in s.meta.attrs:  # a FileRef is shown as the File it names
                if a.readable and a.files is not None and a.files in self.api.files:
                    result[a.name] = ref_field(self.api.files[a.files], a.name, a.description)
            result["_key"] = GraphQLField(
                GraphQLNonNull(GraphQLString), resolve=lambda item, info: s.meta.key_of(item)
            )
            result["_etag"] = GraphQLField(
                GraphQLNonNull(GraphQLString), resolve=lambda item, info: self.api.etag(s, item)
            )
            result.update(self.relation_fields(s))
            return result

        t = GraphQLObjectType(title, fields, description=s.meta.description)
        self.types[title] = t
        return t

    def relation_fields(self, s: Served) -> dict[str, GraphQLField]:
        """Nested fields for the relations declared on the classes (``BelongsTo``,
        ``HasMany``, ``HasOne``) and the ``links`` given to ``app``: each is resolved with
        one batched read per relation and level of the query."""
        links = self.graph.belongs_to.get(s.name, {})
        result: dict[str, GraphQLField] = {}
        for field_name, (attr, target_name) in links.items():
            target = self.api.served[target_name]
            result[field_name] = GraphQLField(
                self.object_type(target), resolve=self._belongs_to(attr, target)
            )
        back = self.graph.has_many.get(s.name, {})
        for field_name, (target_name, attr, one) in back.items():
            target = self.api.served[target_name]
            if one:
                result[field_name] = GraphQLField(
                    self.object_type(target), resolve=self._has_many(s, target, attr, True)
                )
                continue
            result[field_name] = GraphQLField(
                GraphQLNonNull(GraphQLList(GraphQLNonNull(self.object_type(target)))),
                args={"limit": GraphQLArgument(GraphQLInt)},
                resolve=self._has_many(s, target, attr, False),
            )
        return result

    def _belongs_to(self, attr: str, target: Served) -> Callable[..., Any]:
        def resolve(item: Any, info: Info) -> Any:
            value = getattr(item, attr)
            if value is None:
                return None
            key = target.meta.key_string((value,))
            return info.context.loader(target).get(key)

        return resolve

    def _has_many(self, parent: Served, target: Served, attr: str, one: bool) -> Callable[..., Any]:
        api = self.api

        def resolve(item: Any, info: Info, limit: int | None = None) -> Any:
            ctx: Context = info.context
            if one:
                limit = 1
            elif limit is None:
                limit = DEFAULT_CHILDREN
            elif not 1 <= limit <= api.max_limit:
                raise ValidationError(f"limit must be between 1 and {api.max_limit}", field="limit")
            name = f"{target.name}.{attr}.{limit}.{one}"
            loader = ctx.loaders.get(name)
            if loader is None:
                loader = ctx.loaders[name] = Loader(
                    children_loader(ctx.store(target), parent, attr, limit, one)
                )
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
            t = type_of(a)
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
                t = KIND_TYPES.get((a.item_kind if a.kind == "list" else a.kind) or "")
                for op in ops_for(a):  # the one table of ops per kind (persisty.query)
                    if op is Op.EQ:
                        add(a.name, a.name, op, t)
                    elif op is Op.IN:
                        add_op(a.name, op, GraphQLList(t))
                    elif op is Op.EXISTS:
                        add_op(a.name, op, GraphQLBoolean)
                    elif op in STRING_OPS and a.kind == "str":
                        add_op(a.name, op, GraphQLString)
                    else:  # ne, ranges; contains on a list takes one element
                        add_op(a.name, op, t)
            me = self.filters[s.name][0]
            result["and"] = GraphQLInputField(GraphQLList(GraphQLNonNull(me)))
            result["or"] = GraphQLInputField(GraphQLList(GraphQLNonNull(me)))
            result["not"] = GraphQLInputField(me)
            result["q"] = GraphQLInputField(GraphQLString, description="free-text search")
            result[paths_field(s)] = GraphQLInputField(
                GraphQLList(GraphQLNonNull(PATH_FILTER)),
                description="comparisons on nested paths (all must hold)",
            )
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
        add_file_fields(self.api, self.api.files, query, mutation)
        return GraphQLSchema(
            GraphQLObjectType("Query", query),
            GraphQLObjectType("Mutation", mutation) if mutation else None,
        )

    def add_store(
        self, s: Served, query: dict[str, GraphQLField], mutation: dict[str, GraphQLField]
    ) -> None:
        t = self.object_type(s)
        filt, ops = self.filter_type(s)
        camel_name, pascal_name = camel(s.name), pascal(s.name)
        title = s.meta.cls.__name__
        page = GraphQLObjectType(
            title + "Page",
            {
                "items": GraphQLField(GraphQLNonNull(GraphQLList(GraphQLNonNull(t)))),
                "next_page_key": GraphQLField(GraphQLString),
            },
        )
        result_t = GraphQLObjectType(
            title + "EditResult",
            {
                "ok": GraphQLField(GraphQLNonNull(GraphQLBoolean)),
                "code": GraphQLField(GraphQLString),
                "message": GraphQLField(GraphQLString),
                "field": GraphQLField(GraphQLString),
                "item": GraphQLField(t),
            },
        )
        create_in = self.input_type(s, "create")
        update_in = self.input_type(s, "update")
        patch_in = self.input_type(s, "patch")
        edit_in = GraphQLInputObjectType(
            title + "EditInput",
            {
                "op": GraphQLInputField(GraphQLNonNull(EDIT_OP)),
                "item": GraphQLInputField(JSON, description="create/update: the item"),
                "key": GraphQLInputField(GraphQLString, description="patch/delete: the key"),
                "changes": GraphQLInputField(patch_in or JSON, description="patch: the changes"),
                "if_match": GraphQLInputField(GraphQLString),
            },
        )
        key_arg = {"key": GraphQLArgument(GraphQLNonNull(GraphQLString))}
        if_match = {"if_match": GraphQLArgument(GraphQLString)}
        search_args = {
            "filter": GraphQLArgument(filt),
            "order": GraphQLArgument(
                GraphQLList(GraphQLNonNull(GraphQLString)),
                description='e.g. ["-priority", "title"]',
            ),
            "limit": GraphQLArgument(GraphQLInt),
            "page_key": GraphQLArgument(GraphQLString),
        }

        paths = paths_field(s)

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
                elif name == paths:
                    parts += [path_filter(s.meta, x) for x in value or []]
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

        async def search(
            _: Any,
            info: Info,
            filter: Any = None,
            order: Any = None,
            limit: int | None = None,
            page_key: str | None = None,
        ) -> Any:
            if limit is not None and not 1 <= limit <= self.api.max_limit:
                raise ValidationError(
                    f"limit must be between 1 and {self.api.max_limit}", field="limit"
                )
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

        async def update(
            _: Any, info: Info, item: dict[str, Any], if_match: str | None = None
        ) -> Any:
            st = store(info)
            missing = [k for k in s.meta.key.attrs if item.get(k) is None]
            if missing:
                raise ValidationError(
                    f"{s.name}.{missing[0]}: the key is required", field=missing[0]
                )
            key = s.meta.key_string(tuple(a.coerce(item[a.name]) for a in s.meta.key_attrs))
            full = await full_item(s, st, key, item)
            if full is None:
                raise NotFound(f"no {s.name} with key {key!r}")
            return await st.update(full, if_match=await pinned(st, key, if_match))

        async def pinned(st: Any, key: str, if_match: str | None) -> str | None:
            if if_match is None:
                return None
            return (await self.api.store_tags(s, st, [(key, if_match)]))[0]

        async def patch(
            _: Any, info: Info, key: str, changes: dict[str, Any], if_match: str | None = None
        ) -> Any:
            st = store(info)
            return await st.patch(key, changes, if_match=await pinned(st, key, if_match))

        async def delete(_: Any, info: Info, key: str, if_match: str | None = None) -> bool:
            st = store(info)
            await st.delete(key, if_match=await pinned(st, key, if_match))
            return True

        async def edit_batch(
            _: Any, info: Info, edits: list[dict[str, Any]], atomic: bool = True
        ) -> Any:
            st = store(info)
            cap = self.api.limits.graphql_batch
            if len(edits) > cap:
                raise ValidationError(f"at most {cap} edits", field="edits")
            parsed = [
                await parse_edit(s, st, {k: v for k, v in e.items() if v is not None})
                for e in edits
            ]
            await pin_edits(self.api, s, st, parsed)
            return await st.edit_batch(parsed, atomic=atomic)

        query[camel_name] = GraphQLField(
            t, args=key_arg, resolve=read, description=f"The {s.name} with this key, or null"
        )
        query[camel_name + "Search"] = GraphQLField(
            GraphQLNonNull(page), args=search_args, resolve=search
        )
        query[camel_name + "Count"] = GraphQLField(
            GraphQLNonNull(GraphQLInt), args={"filter": GraphQLArgument(filt)}, resolve=count
        )
        query[camel_name + "Batch"] = GraphQLField(
            GraphQLNonNull(GraphQLList(t)),
            args={
                "keys": GraphQLArgument(GraphQLNonNull(GraphQLList(GraphQLNonNull(GraphQLString))))
            },
            resolve=batch,
        )
        if create_in is not None:
            mutation["create" + pascal_name] = GraphQLField(
                GraphQLNonNull(t),
                args={"item": GraphQLArgument(GraphQLNonNull(create_in))},
                resolve=create,
            )
        if update_in is not None:
            mutation["update" + pascal_name] = GraphQLField(
                GraphQLNonNull(t),
                args={"item": GraphQLArgument(GraphQLNonNull(update_in)), **if_match},
                resolve=update,
            )
        if patch_in is not None:
            mutation["patch" + pascal_name] = GraphQLField(
                GraphQLNonNull(t),
                args={**key_arg, "changes": GraphQLArgument(GraphQLNonNull(patch_in)), **if_match},
                resolve=patch,
            )
        mutation["delete" + pascal_name] = GraphQLField(
            GraphQLNonNull(GraphQLBoolean), args={**key_arg, **if_match}, resolve=delete
        )
        mutation["edit" + pascal_name + "Batch"] = GraphQLField(
            GraphQLNonNull(GraphQLList(GraphQLNonNull(result_t))),
            args={
                "edits": GraphQLArgument(GraphQLNonNull(GraphQLList(GraphQLNonNull(edit_in)))),
                "atomic": GraphQLArgument(GraphQLBoolean, default_value=True),
            },
            resolve=edit_batch,
        )


def build_schema(api: Api) -> GraphQLSchema:
    """The GraphQL schema of ``api``'s stores (served at ``/graphql``).

    Example::

        from graphql import print_schema
        asgi = persisty.serve.app(db, [Note])
        print(print_schema(persisty.serve.build_schema(asgi.state.persisty)))
    """
    return _Builder(api).build()
