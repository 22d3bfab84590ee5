"""The app the HTTP tests run with ``persisty serve tests.dynamic.dyn_app:asgi``: no static
store, a catalog of runtime-defined stores, configured by environment variables."""

from __future__ import annotations

import os

import persisty.aio
import persisty.dynamic
from persisty.serve import JWTAuth, app

db = persisty.aio.connect(os.environ["DYN_URL"], namespace=os.environ.get("DYN_NS"))
cat = persisty.dynamic.catalog(db, staleness=float(os.environ.get("DYN_STALENESS", "1")))
secret = os.environ.get("DYN_SECRET")
asgi = app(db, [], dynamic=cat, auth=JWTAuth(secret=secret) if secret else None)
