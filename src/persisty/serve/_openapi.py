"""OpenAPI 3.1 generated from store metadata, and the Swagger UI page."""

from __future__ import annotations

import html
from typing import Any

from persisty.serve._api import Api, Served
from persisty.serve._files_openapi import FILE_REF_SHOWN, file_paths
from persisty.serve._openapi_schema import (
    closed_object,
    error_responses,
    filter_parameters,
    json_content,
    paging_parameters,
    parameter,
    ref,
    store_components,
)
from persisty.serve._static import SWAGGER_UI, asset

__all__ = ["filter_parameters", "openapi", "swagger_html"]


class _Operations:
    """Builds the operations of one served store (its tag, security and error codes)."""

    def __init__(self, s: Served, secured: bool) -> None:
        self.name = s.name
        self.title = s.meta.cls.__name__
        self.security: dict[str, Any] = {}
        if secured:
            self.security["security"] = (
                [{"bearerAuth": []}, {}] if s.anonymous else [{"bearerAuth": []}]
            )
        self.etag_header = {
            "ETag": {"description": "the item's etag", "schema": {"type": "string"}}
        }

    def op(
        self,
        verb: str,
        summary: str,
        ok: dict[str, Any],
        errors: list[str],
        *,
        parameters: list[dict[str, Any]] | None = None,
        body: dict[str, Any] | None = None,
        description: str | None = None,
    ) -> dict[str, Any]:
        """One operation: ``ok`` maps the success status to its response; ``errors`` are
        the error codes beyond the common ones."""
        op: dict[str, Any] = {
            "operationId": f"{verb}_{self.name}",
            "tags": [self.name],
            "summary": summary,
        }
        if description is not None:
            op["description"] = description
        if parameters is not None:
            op["parameters"] = parameters
        op.update(self.security)
        if body is not None:
            op["requestBody"] = {"required": True, "content": json_content(body)}
        op["responses"] = {**ok, **error_responses(["400", "401", "403", "422", *errors])}
        return op

    def stored(self, status: str, description: str, **headers: Any) -> dict[str, Any]:
        """A success response carrying the item and its etag."""
        return {
            status: {
                "description": description,
                "headers": {**self.etag_header, **headers},
                "content": json_content(ref(self.title)),
            }
        }


def _store_paths(api: Api, s: Served, components: dict[str, Any], secured: bool) -> dict[str, Any]:
    meta = s.meta
    title = meta.cls.__name__
    read = store_components(meta, components)
    o = _Operations(s, secured)
    key_param = {
        "name": "key",
        "in": "path",
        "required": True,
        "schema": {"type": "string"},
        "description": "the item's key: " + ":".join(meta.key.attrs),
    }
    if_match = parameter(
        "If-Match",
        "header",
        {"type": "string"},
        "write only if the item's etag is this one (412 otherwise)",
    )
    if_none = parameter("If-None-Match", "header", {"type": "string"}, "304 when the etag matches")
    filters = filter_parameters(meta, read)
    count = {
        "type": "object",
        "required": ["count"],
        "properties": {"count": {"type": "integer", "minimum": 0}},
    }
    keys = {"type": "array", "items": {"type": "string"}, "maxItems": 1000}
    found = {"type": "array", "items": {"anyOf": [ref(title), {"type": "null"}]}}
    edits = {"type": "array", "maxItems": 1000, "items": ref(f"{title}Edit")}
    results = {"type": "array", "items": ref(f"{title}EditResult")}
    base = f"{api.prefix}/{s.name}"
    return {
        base: {
            "get": o.op(
                "search",
                f"Search {s.name}",
                {"200": {"description": "One page", "content": json_content(ref(f"{title}Page"))}},
                [],
                parameters=filters + paging_parameters(api.max_limit),
                description=meta.description or "",
            ),
            "post": o.op(
                "create",
                f"Create a {s.name}",
                o.stored("201", "Created", Location={"schema": {"type": "string"}}),
                ["409"],
                body=ref(f"{title}Create"),
            ),
        },
        base + "/_count": {
            "get": o.op(
                "count",
                f"Count {s.name}",
                {"200": {"description": "How many match", "content": json_content(count)}},
                [],
                parameters=filters,
            ),
        },
        base + "/_batch/read": {
            "post": o.op(
                "read_batch",
                f"Read many {s.name} by key",
                {
                    "200": {
                        "description": "The items, null where missing",
                        "content": json_content(_object({"items": found})),
                    }
                },
                [],
                body=closed_object(["keys"], {"keys": keys}),
            ),
        },
        base + "/_batch/edit": {
            "post": o.op(
                "edit_batch",
                f"Create, update, patch and delete {s.name} in one call",
                {
                    "200": {
                        "description": "One result per edit",
                        "content": json_content(_object({"results": results})),
                    }
                },
                ["404"],
                body=closed_object(
                    ["edits"], {"atomic": {"type": "boolean", "default": True}, "edits": edits}
                ),
            ),
        },
        base + "/{key}": {
            "parameters": [key_param],
            "get": o.op(
                "read",
                f"Read a {s.name}",
                {
                    **o.stored("200", "The item"),
                    "304": {
                        "description": "Not modified (If-None-Match)",
                        "headers": o.etag_header,
                    },
                },
                ["404"],
                parameters=[if_none],
            ),
            "put": o.op(
                "update",
                f"Replace a {s.name}",
                o.stored("200", "Stored"),
                ["404", "409", "412"],
                parameters=[if_match],
                body=ref(f"{title}Update"),
            ),
            "patch": o.op(
                "patch",
                f"Change attributes of a {s.name}",
                o.stored("200", "Stored"),
                ["404", "409", "412"],
                parameters=[if_match],
                body=ref(f"{title}Patch"),
            ),
            "delete": o.op(
                "delete",
                f"Delete a {s.name}",
                {"204": {"description": "Deleted"}},
                ["404", "412"],
                parameters=[if_match],
            ),
        },
    }


def _object(properties: dict[str, Any]) -> dict[str, Any]:
    """An object whose properties are all required."""
    return {"type": "object", "required": list(properties), "properties": properties}


def _login_path() -> dict[str, Any]:
    string = {"type": "string"}
    token = _object(
        {"access_token": string, "token_type": string, "expires_in": {"type": "integer"}}
    )
    return {
        "post": {
            "operationId": "login",
            "summary": "Get a bearer token (demo authenticator)",
            "security": [{}],
            "requestBody": {
                "required": True,
                "content": json_content(
                    closed_object(
                        ["username", "password"], {"username": string, "password": string}
                    )
                ),
            },
            "responses": {
                "200": {"description": "A token", "content": json_content(token)},
                **error_responses(["400", "401", "422"]),
            },
        }
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
        paths[f"{api.prefix}/_login"] = _login_path()
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
