"""What one GraphQL operation may ask for, checked on its document before execution: the
number of root fields (aliases count), the depth of its selections, and its cost (how many
items it may resolve: each list multiplies what is under it by its ``limit``, its number of
``keys``/``edits`` or its default page size)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    ListValueNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    VariableNode,
    get_named_type,
)

from persisty.serve._limits import Limits

INTROSPECTION_DEPTH = 16  # GraphiQL's schema query nests ofType about 10 deep
MAX_VISITS = 5_000  # fields an operation may expand to, fragments spread in
MAX_REPEATS = 20  # one response name in one selection set: validation compares them pairwise


def _fields(
    selection_set: SelectionSetNode | None,
    fragments: Mapping[str, FragmentDefinitionNode],
    seen: frozenset[str] = frozenset(),
) -> Iterator[FieldNode]:
    """The fields of a selection set, fragments spread in (a fragment cycle stops)."""
    if selection_set is None:
        return
    for sel in selection_set.selections:
        if isinstance(sel, FieldNode):
            yield sel
        elif isinstance(sel, InlineFragmentNode):
            yield from _fields(sel.selection_set, fragments, seen)
        elif isinstance(sel, FragmentSpreadNode):
            name = sel.name.value
            frag = fragments.get(name)
            if frag is not None and name not in seen:
                yield from _fields(frag.selection_set, fragments, seen | {name})


def _arg(field: FieldNode, name: str, variables: Mapping[str, Any]) -> Any:
    for a in field.arguments or ():
        if a.name.value == name:
            v = a.value
            if isinstance(v, VariableNode):
                return variables.get(v.name.value)
            if isinstance(v, IntValueNode):
                return int(v.value)
            if isinstance(v, ListValueNode):
                return list(v.values)
            return None
    return None


class _Walk:
    def __init__(
        self,
        schema: GraphQLSchema,
        fragments: Mapping[str, FragmentDefinitionNode],
        variables: Mapping[str, Any],
        limits: Limits,
        default_limit: int,
        max_limit: int,
        default_children: int = 20,
    ) -> None:
        self.schema = schema
        self.fragments = fragments
        self.variables = variables
        self.limits = limits
        self.default_limit = default_limit
        self.default_children = default_children
        self.max_limit = max_limit
        self.cost = 0
        self.introspection = 0
        self.deepest = 0
        self.too_deep = False
        self.visits = 0  # fields looked at, fragments spread in: bounded, whatever the shape
        self.sizes = self._introspection_sizes(schema)

    @staticmethod
    def _introspection_sizes(schema: GraphQLSchema) -> dict[str, int]:
        """What each list of the introspection types holds on average in this schema (the
        schema is fixed: averages bound what a deep introspection query resolves)."""
        types = list(schema.type_map.values())

        def mean(counts: list[int]) -> int:
            counts = [c for c in counts if c]
            return max(1, -(-sum(counts) // len(counts))) if counts else 1

        fields = [f for t in types for f in (getattr(t, "fields", None) or {}).values()]
        return {
            "types": len(types),
            "fields": mean([len(getattr(t, "fields", None) or {}) for t in types]),
            "inputFields": mean([len(getattr(t, "fields", None) or {}) for t in types]),
            "args": mean([len(getattr(f, "args", None) or {}) for f in fields]),
            "enumValues": mean([len(getattr(t, "values", None) or {}) for t in types]),
            "interfaces": mean([len(getattr(t, "interfaces", None) or ()) for t in types]),
            "possibleTypes": 1,
            "directives": len(schema.directives),
            "locations": 20,
        }

    def multiplier(
        self, field: FieldNode, definition: Any, returns_list: bool, introspection: bool
    ) -> int:
        """How many items ``field`` may stand for, per item it is in."""
        if introspection:
            return self.sizes.get(field.name.value, 1) if returns_list else 1
        for arg in ("keys", "edits"):
            value = _arg(field, arg, self.variables)
            if isinstance(value, list):
                return max(len(value), 1)
        accepts = definition is not None and "limit" in (definition.args or {})
        if not accepts:
            return 1  # e.g. a page's items: its search's limit counted them already
        given = any(a.name.value == "limit" for a in field.arguments or ())
        if not given:  # a search's default page, or a has-many field's default children
            return (
                self.default_limit
                if field.name.value.endswith("Search")
                else (self.default_children)
            )
        limit = _arg(field, "limit", self.variables)
        if isinstance(limit, int) and not isinstance(limit, bool):
            return max(min(limit, self.max_limit), 1)
        return self.max_limit  # not a number (yet): the most it can be

    def walk(
        self,
        selection_set: SelectionSetNode | None,
        parent: Any,
        multiplier: int,
        depth: int,
        introspection: bool,
    ) -> None:
        names: dict[str, int] = {}
        for field in _fields(selection_set, self.fragments):
            self.visits += 1
            shown = (field.alias or field.name).value
            names[shown] = names.get(shown, 0) + 1
            if self.visits > MAX_VISITS or names[shown] > MAX_REPEATS:
                self.cost = self.limits.graphql_cost + 1
                return
            name = field.name.value
            if name == "__typename":
                continue
            intro = introspection or name.startswith("__")
            limit = INTROSPECTION_DEPTH if intro else self.limits.graphql_depth
            if depth > limit:
                self.too_deep = True
                return
            self.deepest = max(self.deepest, depth)
            definition: Any = None
            if name == "__schema":
                target: Any = self.schema.get_type("__Schema")
                returns_list = False
            elif name == "__type":
                target = self.schema.get_type("__Type")
                returns_list = False
            else:
                fields = getattr(parent, "fields", None) or {}
                definition = fields.get(name)
                if definition is None:
                    continue  # validation reports it
                t = definition.type
                if isinstance(t, GraphQLNonNull):
                    t = t.of_type
                returns_list = isinstance(t, GraphQLList)
                target = get_named_type(definition.type)
            here = multiplier * self.multiplier(field, definition, returns_list, intro)
            if isinstance(target, GraphQLObjectType):
                # a list stands for ``here`` items; a page (one object with a limit) for one,
                # its items then count the limit
                counted = here if returns_list or intro else multiplier
                if intro:
                    self.introspection += counted
                else:
                    self.cost += counted
                if self.cost > self.limits.graphql_cost or (
                    self.introspection > self.limits.graphql_introspection_cost
                ):
                    return
                self.walk(field.selection_set, target, here, depth + 1, intro)


def check_operation(
    schema: GraphQLSchema,
    document: Any,
    operation: OperationDefinitionNode,
    variables: Mapping[str, Any] | None,
    limits: Limits,
    *,
    default_limit: int,
    max_limit: int,
    default_children: int = 20,
) -> list[GraphQLError]:
    """The limits ``operation`` exceeds, as GraphQL errors (empty: it may run)."""
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    roots = []
    for f in _fields(operation.selection_set, fragments):
        roots.append(f)
        if len(roots) > limits.graphql_root_fields:
            break
    if len(roots) > limits.graphql_root_fields:
        return [
            _error(
                f"the operation has more than {limits.graphql_root_fields} root fields "
                "(aliases count)",
                "too_many_root_fields",
            )
        ]
    root = (
        schema.mutation_type
        if operation.operation == OperationType.MUTATION
        else (schema.query_type)
    )
    w = _Walk(
        schema, fragments, variables or {}, limits, default_limit, max_limit, default_children
    )
    w.walk(operation.selection_set, root, 1, 1, False)
    if w.too_deep:
        return [_error(f"the query nests deeper than {limits.graphql_depth} levels", "too_deep")]
    if w.cost > limits.graphql_cost:
        return [
            _error(
                f"the query may resolve more than {limits.graphql_cost} items (each "
                "list counts its limit, or the default page size, times what it is "
                "in); ask for smaller limits or fewer fields",
                "too_costly",
            )
        ]
    if w.introspection > limits.graphql_introspection_cost:
        return [_error("the introspection query is too large", "too_costly")]
    return []


def _error(message: str, code: str) -> GraphQLError:
    return GraphQLError(message, extensions={"code": code})
