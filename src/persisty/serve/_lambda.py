"""AWS Lambda: the ASGI app behind API Gateway (HTTP API, payload v2) via Mangum."""

from __future__ import annotations

from typing import Any

from mangum import Mangum


def lambda_handler(app: Any, **options: Any) -> Any:
    """A Lambda handler ``handler(event, context)`` serving ``app`` (Mangum; lifespan off,
    so each cold start opens the database lazily on first use).

    Example::

        # handler.py, deployed with the function's handler set to "handler.handler"
        import persisty.aio
        from persisty.serve import app, lambda_handler

        handler = lambda_handler(app(persisty.aio.connect(), [Note]))
    """
    options.setdefault("lifespan", "off")
    return Mangum(app, **options)
