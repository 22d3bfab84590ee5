"""Property-based API testing: schemathesis generates requests from the OpenAPI document
and checks that no response is a server error or breaks the documented schema."""

from __future__ import annotations

import tempfile
from typing import Any

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import positive_data_acceptance
from tests.serve.serve_models import Note, Page

import persisty.aio
from persisty.serve import app

# on the embedded SQLite default (the backend with the most to translate); the app is
# started and stopped around each case, so it must not close the database on shutdown
DB = persisty.aio.connect(f"sqlite:///{tempfile.mkdtemp(prefix='persisty-st-')}/api.db")
ASGI = app(DB, [Note, Page], cache_control="no-cache", close_database=False)
schema = schemathesis.openapi.from_asgi("/api/openapi.json", ASGI)


@schema.parametrize()
@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms(case: schemathesis.Case[Any]) -> None:
    # every documented check but "schema-valid request accepted": page keys, JSON filters and
    # values of the wrong kind for an attribute are strings the schema cannot tell apart
    case.call_and_validate(excluded_checks=[positive_data_acceptance])
