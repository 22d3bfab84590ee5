"""Serving stores over HTTP: REST + OpenAPI + GraphQL as a Starlette ASGI app, bearer JWT
auth feeding the access-control layer, and an AWS Lambda handler.

Example::

    import persisty.aio
    from persisty.serve import app

    db = persisty.aio.connect("sqlite:///notes.db")
    asgi = app(db, [Note])        # uvicorn mymodule:asgi  -> /api/note, /docs, /graphql
    asgi = app(db, [Note], admin=True)                    # and the admin UI at /admin
"""

from persisty.serve._api import JSONResponse, Link
from persisty.serve._app import app, router
from persisty.serve._auth import ANONYMOUS_SUBJECT, DemoAuthenticator, JWTAuth
from persisty.serve._graphql import build_schema
from persisty.serve._lambda import lambda_handler
from persisty.serve._limits import Limits, PayloadTooLarge
from persisty.serve._openapi import openapi
from persisty.serve._options import ServeOptions
from persisty.serve.admin import admin

__all__ = [
    "ANONYMOUS_SUBJECT",
    "DemoAuthenticator",
    "JSONResponse",
    "JWTAuth",
    "Limits",
    "Link",
    "PayloadTooLarge",
    "ServeOptions",
    "admin",
    "app",
    "build_schema",
    "lambda_handler",
    "openapi",
    "router",
]
