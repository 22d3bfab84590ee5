"""OpenAPI 3.1 generated from store metadata, and the Swagger UI page."""

from __future__ import annotations

import copy
import html
from typing import Any

from persisty.model import AttrMeta, StoreMeta
from persisty.query import RANGE_OPS, STRING_OPS, Op, ops_for
from persisty.serve._api import Api, Served
from persisty.serve._files_openapi import FILE_REF_SHOWN, file_paths
from persisty.serve._static import SWAGGER_UI, asset

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


def _schema(meta: StoreMeta, shape: str, components: dict[str, Any]) -> dict[str, Any]:
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


def _error_responses(codes: list[str]) -> dict[str, Any]:
    return {
        c: {
            "description": _ERRORS[c],
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
        for c in codes
    }


def _json(ref_or_schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": ref_or_schema}}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _store_paths(api: Api, s: Served, components: dict[str, Any], secured: bool) -> dict[str, Any]:
    meta = s.meta
    title = meta.cls.__name__
    read = _schema(meta, "read", components)
    components[title] = read
    for shape in ("create", "update", "patch"):
        components[f"{title}{shape.capitalize()}"] = _schema(meta, shape, components)
    components[f"{title}Page"] = {
        "type": "object",
        "required": ["items", "next_page_key"],
        "properties": {
            "items": {"type": "array", "items": _ref(title)},
            "next_page_key": {"type": ["string", "null"]},
        },
    }
    components[f"{title}Edit"] = {
        "oneOf": [
            {
                "type": "object",
                "required": ["op", "item"],
                "additionalProperties": False,
                "properties": {"op": {"const": "create"}, "item": _ref(f"{title}Create")},
            },
            {
                "type": "object",
                "required": ["op", "item"],
                "additionalProperties": False,
                "properties": {
                    "op": {"const": "update"},
                    "item": _ref(f"{title}Update"),
                    "if_match": {"type": ["string", "null"]},
                    "precondition": {"type": ["object", "null"]},
                },
            },
            {
                "type": "object",
                "required": ["op", "key", "changes"],
                "additionalProperties": False,
                "properties": {
                    "op": {"const": "patch"},
                    "key": {"type": "string"},
                    "changes": _ref(f"{title}Patch"),
                    "if_match": {"type": ["string", "null"]},
                    "precondition": {"type": ["object", "null"]},
                },
            },
            {
                "type": "object",
                "required": ["op", "key"],
                "additionalProperties": False,
                "properties": {
                    "op": {"const": "delete"},
                    "key": {"type": "string"},
                    "if_match": {"type": ["string", "null"]},
                    "precondition": {"type": ["object", "null"]},
                },
            },
        ]
    }
    components[f"{title}EditResult"] = {
        "type": "object",
        "required": ["ok", "code", "message", "field", "item", "etag"],
        "properties": {
            "ok": {"type": "boolean"},
            "code": {"type": ["string", "null"]},
            "message": {"type": ["string", "null"]},
            "field": {"type": ["string", "null"]},
            "item": {"anyOf": [_ref(title), {"type": "null"}]},
            "etag": {"type": ["string", "null"]},
        },
    }
    tag = [s.name]
    security: dict[str, Any] = {}
    if secured:
        security["security"] = [{"bearerAuth": []}, {}] if s.anonymous else [{"bearerAuth": []}]
    etag_header = {"ETag": {"description": "the item's etag", "schema": {"type": "string"}}}
    key_param = {
        "name": "key",
        "in": "path",
        "required": True,
        "schema": {"type": "string"},
        "description": "the item's key: " + ":".join(meta.key.attrs),
    }
    if_match = {
        "name": "If-Match",
        "in": "header",
        "required": False,
        "schema": {"type": "string"},
        "description": "write only if the item's etag is this one (412 otherwise)",
    }
    if_none = {
        "name": "If-None-Match",
        "in": "header",
        "required": False,
        "schema": {"type": "string"},
        "description": "304 when the etag matches",
    }
    filters = filter_parameters(meta, read)
    paging = [
        {
            "name": "order",
            "in": "query",
            "required": False,
            "schema": {"type": "string"},
            "description": "attributes to order by, '-' for descending: -priority,title",
        },
        {
            "name": "limit",
            "in": "query",
            "required": False,
            "schema": {"type": "integer", "minimum": 1, "maximum": api.max_limit},
        },
        {
            "name": "page_key",
            "in": "query",
            "required": False,
            "schema": {"type": "string"},
            "description": "next_page_key of the previous page",
        },
    ]
    common = ["400", "401", "403", "422"]
    base = f"{api.prefix}/{s.name}"
    desc = meta.description or ""
    return {
        base: {
            "get": {
                "operationId": f"search_{s.name}",
                "tags": tag,
                "summary": f"Search {s.name}",
                "description": desc,
                "parameters": filters + paging,
                **security,
                "responses": {
                    "200": {"description": "One page", "content": _json(_ref(f"{title}Page"))},
                    **_error_responses(common),
                },
            },
            "post": {
                "operationId": f"create_{s.name}",
                "tags": tag,
                "summary": f"Create a {s.name}",
                **security,
                "requestBody": {"required": True, "content": _json(_ref(f"{title}Create"))},
                "responses": {
                    "201": {
                        "description": "Created",
                        "headers": {**etag_header, "Location": {"schema": {"type": "string"}}},
                        "content": _json(_ref(title)),
                    },
                    **_error_responses([*common, "409"]),
                },
            },
        },
        base + "/_count": {
            "get": {
                "operationId": f"count_{s.name}",
                "tags": tag,
                "summary": f"Count {s.name}",
                "parameters": filters,
                **security,
                "responses": {
                    "200": {
                        "description": "How many match",
                        "content": _json(
                            {
                                "type": "object",
                                "required": ["count"],
                                "properties": {"count": {"type": "integer", "minimum": 0}},
                            }
                        ),
                    },
                    **_error_responses(common),
                },
            },
        },
        base + "/_batch/read": {
            "post": {
                "operationId": f"read_batch_{s.name}",
                "tags": tag,
                "summary": f"Read many {s.name} by key",
                **security,
                "requestBody": {
                    "required": True,
                    "content": _json(
                        {
                            "type": "object",
                            "required": ["keys"],
                            "additionalProperties": False,
                            "properties": {
                                "keys": {
                                    "type": "array",
                                    "items": {"type": "string"},
                                    "maxItems": 1000,
                                }
                            },
                        }
                    ),
                },
                "responses": {
                    "200": {
                        "description": "The items, null where missing",
                        "content": _json(
                            {
                                "type": "object",
                                "required": ["items"],
                                "properties": {
                                    "items": {
                                        "type": "array",
                                        "items": {"anyOf": [_ref(title), {"type": "null"}]},
                                    }
                                },
                            }
                        ),
                    },
                    **_error_responses(common),
                },
            },
        },
        base + "/_batch/edit": {
            "post": {
                "operationId": f"edit_batch_{s.name}",
                "tags": tag,
                "summary": f"Create, update, patch and delete {s.name} in one call",
                **security,
                "requestBody": {
                    "required": True,
                    "content": _json(
                        {
                            "type": "object",
                            "required": ["edits"],
                            "additionalProperties": False,
                            "properties": {
                                "atomic": {"type": "boolean", "default": True},
                                "edits": {
                                    "type": "array",
                                    "maxItems": 1000,
                                    "items": _ref(f"{title}Edit"),
                                },
                            },
                        }
                    ),
                },
                "responses": {
                    "200": {
                        "description": "One result per edit",
                        "content": _json(
                            {
                                "type": "object",
                                "required": ["results"],
                                "properties": {
                                    "results": {
                                        "type": "array",
                                        "items": _ref(f"{title}EditResult"),
                                    }
                                },
                            }
                        ),
                    },
                    **_error_responses([*common, "404"]),
                },
            },
        },
        base + "/{key}": {
            "parameters": [key_param],
            "get": {
                "operationId": f"read_{s.name}",
                "tags": tag,
                "summary": f"Read a {s.name}",
                "parameters": [if_none],
                **security,
                "responses": {
                    "200": {
                        "description": "The item",
                        "headers": etag_header,
                        "content": _json(_ref(title)),
                    },
                    "304": {"description": "Not modified (If-None-Match)", "headers": etag_header},
                    **_error_responses([*common, "404"]),
                },
            },
            "put": {
                "operationId": f"update_{s.name}",
                "tags": tag,
                "summary": f"Replace a {s.name}",
                "parameters": [if_match],
                **security,
                "requestBody": {"required": True, "content": _json(_ref(f"{title}Update"))},
                "responses": {
                    "200": {
                        "description": "Stored",
                        "headers": etag_header,
                        "content": _json(_ref(title)),
                    },
                    **_error_responses([*common, "404", "409", "412"]),
                },
            },
            "patch": {
                "operationId": f"patch_{s.name}",
                "tags": tag,
                "summary": f"Change attributes of a {s.name}",
                "parameters": [if_match],
                **security,
                "requestBody": {"required": True, "content": _json(_ref(f"{title}Patch"))},
                "responses": {
                    "200": {
                        "description": "Stored",
                        "headers": etag_header,
                        "content": _json(_ref(title)),
                    },
                    **_error_responses([*common, "404", "409", "412"]),
                },
            },
            "delete": {
                "operationId": f"delete_{s.name}",
                "tags": tag,
                "summary": f"Delete a {s.name}",
                "parameters": [if_match],
                **security,
                "responses": {
                    "204": {"description": "Deleted"},
                    **_error_responses([*common, "404", "412"]),
                },
            },
        },
    }


def openapi(api: Api) -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``api`` (served at ``{prefix}/openapi.json``).

    Example::

        asgi = persisty.serve.app(db, [Note])
        spec = persisty.serve.openapi(asgi.state.persisty)
        spec["paths"]["/api/note"]["get"]["parameters"]   # every filter parameter
    """
    components: dict[str, Any] = {
        "Error": {
            "type": "object",
            "required": ["code", "message", "field"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "field": {"type": ["string", "null"]},
            },
        },
    }
    paths: dict[str, Any] = {}
    secured = api.auth is not None
    if api.login is not None:
        paths[f"{api.prefix}/_login"] = {
            "post": {
                "operationId": "login",
                "summary": "Get a bearer token (demo authenticator)",
                "security": [{}],
                "requestBody": {
                    "required": True,
                    "content": _json(
                        {
                            "type": "object",
                            "required": ["username", "password"],
                            "additionalProperties": False,
                            "properties": {
                                "username": {"type": "string"},
                                "password": {"type": "string"},
                            },
                        }
                    ),
                },
                "responses": {
                    "200": {
                        "description": "A token",
                        "content": _json(
                            {
                                "type": "object",
                                "required": ["access_token", "token_type", "expires_in"],
                                "properties": {
                                    "access_token": {"type": "string"},
                                    "token_type": {"type": "string"},
                                    "expires_in": {"type": "integer"},
                                },
                            }
                        ),
                    },
                    **_error_responses(["400", "401", "422"]),
                },
            }
        }
    for s in api.served.values():
        paths.update(_store_paths(api, s, components, secured))
    paths.update(file_paths(api, api.files, secured))
    if "FileRef" in components:  # served with the file's details and a signed URL
        components["FileRef"].setdefault("properties", {}).update(FILE_REF_SHOWN)
    doc: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": api.title, "version": api.version},
        "paths": paths,
        "components": {"schemas": components},
    }
    if secured:
        doc["components"]["securitySchemes"] = {
            "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
        }
    return doc


def swagger_html(spec_url: str, title: str) -> str:
    """Swagger UI for ``spec_url``; its assets are the package's own (``_static/``)."""
    t = html.escape(title)
    u = html.escape(spec_url)
    css = asset(f"{SWAGGER_UI}/swagger-ui.css")
    js = asset(f"{SWAGGER_UI}/swagger-ui-bundle.js")
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{t} - API docs</title>
<link rel="stylesheet" href="{css}">
</head><body><div id="swagger-ui"></div>
<script src="{js}"></script>
<script>
window.ui = SwaggerUIBundle({{url: "{u}", dom_id: "#swagger-ui", validatorUrl: null}});
</script>
</body></html>"""
