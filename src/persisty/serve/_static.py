"""The browser assets of ``/docs`` (Swagger UI) and ``/graphql`` (GraphiQL), shipped with the
package and served from the app's own origin (``static/README.md`` says where they come from).

Pages refer to them with relative URLs (``_static/…``), so they also load when the API's
routes are mounted under a path; each folder name carries its version, so a year-long
``immutable`` cache is safe.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from starlette.routing import Mount
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

STATIC = Path(__file__).resolve().parent / "static"
STATIC_PATH = "/_static"
LONG_CACHE = "public, max-age=31536000, immutable"

SWAGGER_UI = "swagger-ui-5.35.0"
GRAPHIQL = "graphiql-3.8.3"
REACT = "react-18.3.1"
REACT_DOM = "react-dom-18.3.1"


def asset(name: str) -> str:
    """The URL of one asset, relative to a page at the app's top level (``/docs``)."""
    return f"{STATIC_PATH.lstrip('/')}/{name}"


class _CachedStaticFiles(StaticFiles):
    """Static files with a long ``Cache-Control`` (the URLs change with the versions)."""

    def file_response(
        self, full_path: Any, stat_result: Any, scope: Scope, status_code: int = 200
    ) -> Any:
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers["Cache-Control"] = LONG_CACHE
        return response


def static_route() -> Mount:
    """The route serving the assets at ``/_static/…``."""
    return Mount(STATIC_PATH, app=_CachedStaticFiles(directory=STATIC), name="persisty_static")
