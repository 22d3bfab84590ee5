"""OpenAPI documents every file route and method (with its headers and statuses), and the
document is valid OpenAPI 3.1."""

from __future__ import annotations

import re

from openapi_spec_validator import validate
from starlette.routing import Route
from tests.serve.test_files_refs import RefNote

import persisty.aio
import persisty.files.aio
from persisty.serve import JWTAuth, app, openapi


def test_every_file_route_is_documented() -> None:
    asgi = app(
        persisty.aio.connect("memory://"),
        [RefNote],
        auth=JWTAuth(secret="a test secret that is long enough for HS256 ok"),
        files={
            "docs": persisty.files.aio.connect("memory://", name="docs"),
            "pics": persisty.files.aio.connect("memory://", name="pics"),
        },
    )
    spec = openapi(asgi.state.persisty)
    validate(spec)
    routes = [r for r in asgi.routes if isinstance(r, Route) and "/_files/" in r.path]
    assert len(routes) == 2 * 8
    for route in routes:
        path = re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path)
        assert path in spec["paths"], path
        documented = {m.upper() for m in spec["paths"][path]}
        assert set(route.methods or ()) - {"HEAD"} <= documented, (path, route.methods)
    download = spec["paths"]["/api/_files/docs/{key}"]["get"]
    headers = {p["name"] for p in download["parameters"] if p["in"] == "header"}
    assert {"Range", "If-None-Match", "If-Modified-Since", "If-Range", "If-Match"} <= headers
    assert {"200", "206", "304", "404", "412", "416"} <= set(download["responses"])
    assert "Content-Range" in download["responses"]["416"]["headers"]
    put = spec["paths"]["/api/_files/docs/{key}"]["put"]
    assert {"Content-Digest", "If-Match", "If-None-Match"} <= {
        p["name"] for p in put["parameters"] if p["in"] == "header"
    }
    assert {"200", "201", "400", "412", "413"} <= set(put["responses"])
    shown = spec["components"]["schemas"]["FileRef"]["properties"]
    assert {"key", "etag", "size", "content_type", "url", "url_expires_at"} <= set(shown)
