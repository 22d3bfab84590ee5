"""The OpenAPI description of the file routes: every path, method, header and status of
``{prefix}/_files/{store}`` (downloads, signed URLs, PUT, DELETE, list, count, copy and the
upload grants)."""

from __future__ import annotations

from typing import Any

ERROR = {"$ref": "#/components/schemas/Error"}
FILE_INFO: dict[str, Any] = {
    "type": "object",
    "required": [
        "key",
        "size",
        "content_type",
        "etag",
        "created_at",
        "updated_at",
        "url",
        "url_expires_at",
    ],
    "properties": {
        "key": {"type": "string"},
        "size": {"type": "integer", "minimum": 0},
        "content_type": {"type": "string"},
        "etag": {"type": "string", "description": "SHA-256 hex of the bytes"},
        "created_at": {"type": "string", "format": "date-time"},
        "updated_at": {"type": "string", "format": "date-time"},
        "owner": {"type": ["string", "null"]},
        "filename": {"type": ["string", "null"]},
        "metadata": {"type": "object", "additionalProperties": {"type": "string"}},
        "url": {"type": "string", "description": "a signed download URL (no bearer needed)"},
        "url_expires_at": {"type": "string", "format": "date-time"},
    },
}
FILE_REF_SHOWN: dict[str, Any] = {
    "size": {"type": ["integer", "null"], "readOnly": True},
    "content_type": {"type": ["string", "null"], "readOnly": True},
    "url": {
        "type": ["string", "null"],
        "readOnly": True,
        "description": "a signed download URL; null when the file changed, is gone or "
        "is not readable by the caller",
    },
    "url_expires_at": {"type": ["string", "null"], "format": "date-time", "readOnly": True},
}
GRANT: dict[str, Any] = {
    "type": "object",
    "required": [
        "upload_id",
        "key",
        "method",
        "url",
        "fields",
        "parts",
        "expires_at",
        "complete_url",
    ],
    "properties": {
        "upload_id": {"type": "string"},
        "key": {"type": "string"},
        "method": {"type": "string", "enum": ["POST", "PUT"]},
        "url": {"type": "string", "description": "POST target of a form grant"},
        "fields": {
            "type": "object",
            "additionalProperties": {"type": "string"},
            "description": "form fields to send before the file (named `file`)",
        },
        "parts": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["part_number", "url", "size"],
                "properties": {
                    "part_number": {"type": "integer"},
                    "url": {"type": "string"},
                    "size": {"type": "integer"},
                },
            },
        },
        "expires_at": {"type": "string", "format": "date-time"},
        "complete_url": {"type": "string"},
    },
}


def _header(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "header",
        "required": False,
        "schema": {"type": "string"},
        "description": description,
    }


def _query(name: str, description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema or {"type": "string"},
        "description": description,
    }


def _errors(*codes: str) -> dict[str, Any]:
    text = {
        "400": "Malformed request",
        "401": "Credentials are required",
        "403": "The policy forbids it, or a signed URL is invalid or expired",
        "404": "No such file (or the caller may not see it)",
        "409": "A concurrent change",
        "412": "A precondition failed",
        "413": "The body is larger than the limit",
        "416": "Range not satisfiable",
        "422": "Invalid input (the code and field say what)",
    }
    out = {
        c: {"description": text[c], "content": {"application/json": {"schema": ERROR}}}
        for c in codes
    }
    if "416" in out:
        out["416"]["headers"] = {
            "Content-Range": {"schema": {"type": "string"}, "description": "bytes */<size>"}
        }
    return out


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


KEY = {
    "name": "key",
    "in": "path",
    "required": True,
    "schema": {"type": "string"},
    "description": "the file key (`/`-separated)",
}
UPLOAD = {"name": "upload_id", "in": "path", "required": True, "schema": {"type": "string"}}
DOWNLOAD_HEADERS = {
    name: {"schema": {"type": "string"}, "description": text}
    for name, text in {
        "ETag": '"<sha256>"',
        "Last-Modified": "HTTP date",
        "Content-Length": "bytes",
        "Accept-Ranges": "bytes",
        "Content-Range": "on 206: bytes first-last/size",
        "Content-Disposition": "inline for an inline-safe type (not HTML, SVG, XML), else "
        "attachment; ?disposition=attachment forces it (RFC 8187 filename*)",
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "sandbox, on inline responses",
    }.items()
}


def file_paths(api: Any, mounts: dict[str, Any], secured: bool) -> dict[str, Any]:
    """The paths of every file mount."""
    paths: dict[str, Any] = {}
    for name, mount in mounts.items():
        base = f"{api.prefix}/_files/{name}"
        tag = [f"files: {name}"]
        limit = mount.upload_limit
        download = {
            "tags": tag,
            "operationId": f"download_{name}",
            "summary": "Download a file (ranges, conditional requests, signed URLs)",
            "parameters": [
                KEY,
                _header(
                    "Range", "bytes=first-last, first-, -suffix; several: multipart/byteranges"
                ),
                _header("If-None-Match", "304 when the ETag matches"),
                _header("If-Modified-Since", "304 when not modified since"),
                _header("If-Match", "412 unless the ETag matches"),
                _header("If-Unmodified-Since", "412 when modified since"),
                _header("If-Range", "the Range applies only while this ETag or date holds"),
                _query(
                    "disposition",
                    "auto (default: inline for inline-safe types, else attachment), "
                    "attachment, or inline (as auto: HTML, SVG, XML are never inline)",
                    {"type": "string", "enum": ["auto", "attachment", "inline"]},
                ),
                _query("exp", "signed URL: expiry (Unix seconds)"),
                _query("v", "signed URL: the etag of the version"),
                _query("sig", "signed URL: HMAC over store, key, etag, expiry, disposition"),
            ],
            "responses": {
                "200": {
                    "description": "The file",
                    "headers": DOWNLOAD_HEADERS,
                    "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}},
                },
                "206": {
                    "description": "Partial content (one range, or multipart/byteranges)",
                    "headers": DOWNLOAD_HEADERS,
                },
                "302": {"description": "Redirect to a presigned S3 GET (file_redirect)"},
                "304": {"description": "Not modified"},
                **_errors("400", "401", "403", "404", "412", "416", "422"),
            },
        }
        if secured:
            download["security"] = [{"bearerAuth": []}, {}]
        paths[base + "/{key}"] = {
            "get": download,
            "head": {
                **download,
                "operationId": f"head_{name}",
                "summary": "The headers of a download",
            },
            "put": {
                "tags": tag,
                "operationId": f"put_{name}",
                "summary": f"Upload a file through the server (at most {limit} bytes)",
                "parameters": [
                    KEY,
                    _header("Content-Type", "the file's type (sniffed when absent)"),
                    _header("Content-Digest", "sha-256=:<base64>: (400 digest_mismatch)"),
                    _header("If-Match", "412 unless the file has this ETag"),
                    _header("If-None-Match", "*: 412 when the file exists"),
                ],
                "requestBody": {
                    "required": True,
                    "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}},
                },
                "responses": {
                    "200": {"description": "Replaced", "content": _json(FILE_INFO)},
                    "201": {"description": "Created", "content": _json(FILE_INFO)},
                    **_errors("400", "401", "403", "404", "409", "412", "413", "422"),
                },
            },
            "delete": {
                "tags": tag,
                "operationId": f"delete_{name}",
                "summary": "Delete a file",
                "parameters": [KEY, _header("If-Match", "412 unless the file has this ETag")],
                "responses": {
                    "204": {"description": "Deleted"},
                    **_errors("401", "403", "404", "412", "422"),
                },
            },
        }
        paths[base] = {
            "get": {
                "tags": tag,
                "operationId": f"list_{name}",
                "summary": "List files (filters on key, size, content_type, created_at, "
                "updated_at, owner, filename as for items)",
                "parameters": [
                    _query("prefix", "key prefix"),
                    _query("order", "e.g. -size"),
                    _query("limit", "page size", {"type": "integer", "minimum": 1}),
                    _query("page_key", "the next_page_key of the previous page"),
                ],
                "responses": {
                    "200": {
                        "description": "A page",
                        "content": _json(
                            {
                                "type": "object",
                                "required": ["items", "next_page_key"],
                                "properties": {
                                    "items": {"type": "array", "items": FILE_INFO},
                                    "next_page_key": {"type": ["string", "null"]},
                                },
                            }
                        ),
                    },
                    **_errors("401", "403", "422"),
                },
            }
        }
        paths[base + "/_count"] = {
            "get": {
                "tags": tag,
                "operationId": f"count_{name}",
                "summary": "Count files",
                "parameters": [_query("prefix", "key prefix")],
                "responses": {
                    "200": {
                        "description": "The count",
                        "content": _json(
                            {
                                "type": "object",
                                "required": ["count"],
                                "properties": {"count": {"type": "integer"}},
                            }
                        ),
                    },
                    **_errors("401", "403", "422"),
                },
            }
        }
        paths[base + "/_copy"] = {
            "post": {
                "tags": tag,
                "operationId": f"copy_{name}",
                "summary": "Copy a file (no byte moves)",
                "requestBody": {
                    "required": True,
                    "content": _json(
                        {
                            "type": "object",
                            "required": ["from", "to"],
                            "additionalProperties": False,
                            "properties": {"from": {"type": "string"}, "to": {"type": "string"}},
                        }
                    ),
                },
                "responses": {
                    "200": {"description": "Replaced", "content": _json(FILE_INFO)},
                    "201": {"description": "Copied", "content": _json(FILE_INFO)},
                    **_errors("401", "403", "404", "422"),
                },
            }
        }
        paths[base + "/_uploads"] = {
            "post": {
                "tags": tag,
                "operationId": f"begin_upload_{name}",
                "summary": "An upload grant (the caller's create/update right is checked "
                "first: no URL without it)",
                "requestBody": {
                    "required": True,
                    "content": _json(
                        {
                            "type": "object",
                            "required": ["size", "content_type"],
                            "additionalProperties": False,
                            "properties": {
                                "key": {"type": "string"},
                                "prefix": {"type": "string"},
                                "size": {"type": "integer", "minimum": 0},
                                "content_type": {"type": "string"},
                                "filename": {"type": "string"},
                                "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
                                "part_size": {"type": "integer"},
                                "expires_in": {"type": "integer"},
                            },
                        }
                    ),
                },
                "responses": {
                    "201": {"description": "The grant", "content": _json(GRANT)},
                    **_errors("400", "401", "403", "404", "422"),
                },
            }
        }
        paths[base + "/_uploads/{upload_id}"] = {
            "get": {
                "tags": tag,
                "operationId": f"upload_status_{name}",
                "summary": "An upload's state: bytes and parts received, expiry",
                "parameters": [UPLOAD],
                "responses": {"200": {"description": "The status"}, **_errors("401", "404")},
            },
            "post": {
                "tags": tag,
                "operationId": f"upload_form_{name}",
                "summary": "Hosted backends: the form target of a grant "
                "(multipart/form-data: the grant's fields, then `file`)",
                "parameters": [UPLOAD],
                "security": [{}],
                "requestBody": {
                    "required": True,
                    "content": {"multipart/form-data": {"schema": {"type": "object"}}},
                },
                "responses": {
                    "204": {"description": "Received (not yet visible)"},
                    **_errors("404", "413", "422"),
                },
            },
            "delete": {
                "tags": tag,
                "operationId": f"abort_upload_{name}",
                "summary": "Abort an upload",
                "parameters": [UPLOAD],
                "responses": {"204": {"description": "Aborted"}, **_errors("401", "404")},
            },
        }
        paths[base + "/_uploads/{upload_id}/{part}"] = {
            "put": {
                "tags": tag,
                "operationId": f"upload_part_{name}",
                "summary": "Hosted backends: one part of a multipart grant",
                "parameters": [
                    UPLOAD,
                    {
                        "name": "part",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "integer", "minimum": 1},
                    },
                    {**_query("token", "the part's signed token"), "required": True},
                ],
                "security": [{}],
                "requestBody": {
                    "required": True,
                    "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}},
                },
                "responses": {
                    "200": {
                        "description": "Received; the ETag to complete with",
                        "headers": {"ETag": {"schema": {"type": "string"}}},
                    },
                    **_errors("404", "413", "422"),
                },
            }
        }
        paths[base + "/_uploads/{upload_id}/_complete"] = {
            "post": {
                "tags": tag,
                "operationId": f"complete_upload_{name}",
                "summary": "Finalize: checks size, type, sniffed bytes and SHA-256; only then "
                "is the file visible",
                "parameters": [UPLOAD],
                "requestBody": {
                    "required": False,
                    "content": _json(
                        {
                            "type": "object",
                            "properties": {
                                "parts": {
                                    "type": "array",
                                    "items": {
                                        "type": "object",
                                        "required": ["part_number", "etag"],
                                        "properties": {
                                            "part_number": {"type": "integer"},
                                            "etag": {"type": "string"},
                                        },
                                    },
                                }
                            },
                        }
                    ),
                },
                "responses": {
                    "201": {"description": "The file", "content": _json(FILE_INFO)},
                    **_errors("401", "404", "422"),
                },
            }
        }
    return paths
