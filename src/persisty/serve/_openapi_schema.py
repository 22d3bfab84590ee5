"""The schemas and parameters of the OpenAPI document: item shapes (from the store's JSON
Schema), the page, edit and result objects, the filter parameters of the query string and the
error responses."""

from __future__ import annotations

import copy
from typing import Any

from persisty.model import AttrMeta, StoreMeta
from persisty.query import RANGE_OPS, STRING_OPS, Op, ops_for

_ERRORS = {
    "400": "The request could not be read (malformed JSON)",
    "401": "Credentials are missing or invalid",
    "403": "The principal may not do this",
    "404": "No such item",
    "409": "Conflict: the key or a unique value is taken",
    "412": "Precondition failed: the etag (If-Match) or precondition does not hold",
    "422": "Invalid input; `field` names the attribute",
}


def _rewrite_refs(node: Any) -> Any:
    if isinstance(node, dict):
        out = {}
        for k, v in node.items():
            if k == "$ref" and isinstance(v, str) and v.startswith("#/$defs/"):
                out[k] = "#/components/schemas/" + v[len("#/$defs/") :]
            else:
                out[k] = _rewrite_refs(v)
        return out
    if isinstance(node, list):
        return [_rewrite_refs(x) for x in node]
    return node


def item_schema(meta: StoreMeta, shape: str, components: dict[str, Any]) -> dict[str, Any]:
    s = copy.deepcopy(meta.json_schema(shape))
    for name, d in s.pop("$defs", {}).items():
        components.setdefault(name, _rewrite_refs(d))
    return _rewrite_refs(s)  # type: ignore[no-any-return]


def _scalar_schema(a: AttrMeta, item_schema: dict[str, Any]) -> dict[str, Any]:
    """The schema of one filter value of ``a`` (taken from the item's schema, null removed)."""
    s = copy.deepcopy(item_schema.get("properties", {}).get(a.name, {}))
    if "anyOf" in s:
        options = [o for o in s["anyOf"] if o.get("type") != "null"]
        s = options[0] if len(options) == 1 else {"anyOf": options}
    for k in (
        "default",
        "minLength",
        "maxLength",
        "pattern",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
    ):
        s.pop(k, None)  # a filter value may be anything of the attribute's type
    return s  # type: ignore[no-any-return]


def filter_parameters(meta: StoreMeta, read_schema: dict[str, Any]) -> list[dict[str, Any]]:
    """Every query-string filter parameter of a store, with its value's schema."""
    params: list[dict[str, Any]] = []

    def add(name: str, schema: dict[str, Any], description: str) -> None:
        # a filter pair may repeat, meaning AND (e.g. tags__contains=a&tags__contains=b)
        params.append(
            {
                "name": name,
                "in": "query",
                "required": False,
                "schema": {"anyOf": [schema, {"type": "array", "items": schema}]},
                "style": "form",
                "explode": True,
                "description": description + " (repeat for AND)",
            }
        )

    for a in meta.attrs:
        if not a.readable:
            continue
        ops = ops_for(a)  # the one table of ops per kind (persisty.query)
        if Op.EQ in ops:
            value = _scalar_schema(a, read_schema)
            if a.optional:  # "null" in a query string is the missing value
                value = {"anyOf": [value, {"type": "null"}]}
            add(a.name, value, f"{a.name} equals")
            add(f"{a.name}__ne", value, f"{a.name} differs")
            params.append(
                {
                    "name": f"{a.name}__in",
                    "in": "query",
                    "required": False,
                    "schema": {"type": "array", "items": value},
                    "style": "form",
                    "explode": True,
                    "description": f"{a.name} is one of (repeat)",
                }
            )
            for op in ops:
                if op in RANGE_OPS:
                    add(f"{a.name}__{op.value}", value, f"{a.name} {op.value}")
                elif op in STRING_OPS:
                    add(f"{a.name}__{op.value}", {"type": "string"}, f"{a.name} {op.value}")
        elif Op.CONTAINS in ops:
            items = _scalar_schema(a, read_schema).get("items", {})
            add(f"{a.name}__contains", items, f"{a.name} contains the element")
        add(f"{a.name}__exists", {"type": "boolean"}, f"{a.name} is (not) null")
    add("q", {"type": "string"}, "free-text search over the string attributes")
    add(
        "filter",
        {"type": "string"},
        'a JSON filter for what pairs cannot say, e.g. {"or": [{"attr": "owner", "op": "eq", '
        '"value": "ann"}, ...]}',
    )
    return params


def error_responses(codes: list[str]) -> dict[str, Any]:
    """The responses of the error ``codes`` (each an ``Error`` object)."""
    return {c: {"description": _ERRORS[c], "content": json_content(ref("Error"))} for c in codes}


def json_content(ref_or_schema: dict[str, Any]) -> dict[str, Any]:
    """A JSON request or response body of this schema."""
    return {"application/json": {"schema": ref_or_schema}}


def ref(name: str) -> dict[str, str]:
    """A reference to the component schema ``name``."""
    return {"$ref": f"#/components/schemas/{name}"}


def closed_object(required: list[str], properties: dict[str, Any]) -> dict[str, Any]:
    """An object schema with these properties and no others."""
    return {
        "type": "object",
        "required": required,
        "additionalProperties": False,
        "properties": properties,
    }


def parameter(name: str, where: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    """An optional parameter in the query string or a header."""
    return {
        "name": name,
        "in": where,
        "required": False,
        "schema": schema,
        "description": description,
    }


def _nullable(kind: str = "string") -> dict[str, Any]:
    return {"type": [kind, "null"]}


def _condition() -> dict[str, Any]:
    return {"if_match": _nullable(), "precondition": _nullable("object")}


def store_components(meta: StoreMeta, components: dict[str, Any]) -> dict[str, Any]:
    """Adds the schemas of a store's items, pages, edits and edit results to ``components``;
    returns the item's read schema."""
    title = meta.cls.__name__
    read = item_schema(meta, "read", components)
    components[title] = read
    for shape in ("create", "update", "patch"):
        components[f"{title}{shape.capitalize()}"] = item_schema(meta, shape, components)
    components[f"{title}Page"] = {
        "type": "object",
        "required": ["items", "next_page_key"],
        "properties": {
            "items": {"type": "array", "items": ref(title)},
            "next_page_key": _nullable(),
        },
    }
    components[f"{title}Edit"] = {
        "oneOf": [
            closed_object(
                ["op", "item"], {"op": {"const": "create"}, "item": ref(f"{title}Create")}
            ),
            closed_object(
                ["op", "item"],
                {"op": {"const": "update"}, "item": ref(f"{title}Update"), **_condition()},
            ),
            closed_object(
                ["op", "key", "changes"],
                {
                    "op": {"const": "patch"},
                    "key": {"type": "string"},
                    "changes": ref(f"{title}Patch"),
                    **_condition(),
                },
            ),
            closed_object(
                ["op", "key"],
                {"op": {"const": "delete"}, "key": {"type": "string"}, **_condition()},
            ),
        ]
    }
    components[f"{title}EditResult"] = {
        "type": "object",
        "required": ["ok", "code", "message", "field", "item", "etag"],
        "properties": {
            "ok": {"type": "boolean"},
            "code": _nullable(),
            "message": _nullable(),
            "field": _nullable(),
            "item": {"anyOf": [ref(title), {"type": "null"}]},
            "etag": _nullable(),
        },
    }
    return read


def paging_parameters(max_limit: int) -> list[dict[str, Any]]:
    """``order``, ``limit`` and ``page_key`` of a search."""
    return [
        parameter(
            "order",
            "query",
            {"type": "string"},
            "attributes to order by, '-' for descending: -priority,title",
        ),
        {
            "name": "limit",
            "in": "query",
            "required": False,
            "schema": {"type": "integer", "minimum": 1, "maximum": max_limit},
        },
        parameter("page_key", "query", {"type": "string"}, "next_page_key of the previous page"),
    ]
