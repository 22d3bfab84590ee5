"""Property-based GraphQL testing: schemathesis generates queries and mutations from the
schema (introspection) and checks that none causes a server error."""

from __future__ import annotations

import tempfile
from typing import Any

import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.graphql import nodes, scalar
from tests.serve.serve_models import Note, Page

import persisty.aio
from persisty.serve import app

DB = persisty.aio.connect(f"sqlite:///{tempfile.mkdtemp(prefix='persisty-gq-')}/gq.db")
ASGI = app(DB, [Note, Page], close_database=False)
for name, value in (
    ("UUID", nodes.String("0a6c4a80-4f2b-4c31-8d2e-6f3c3f1f9d11")),
    ("Date", nodes.String("2024-05-06")),
    ("DateTime", nodes.String("2024-05-06T07:08:09Z")),
    ("EnumValue", nodes.String("happy")),
):
    scalar(name, st.just(value))  # valid values for the custom scalars
schema = schemathesis.graphql.from_asgi("/graphql", ASGI)


@schema.parametrize()
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
def test_graphql_has_no_server_errors(case: schemathesis.Case[Any]) -> None:
    response = case.call()
    assert response.status_code in (200, 400), response.text
    body = response.json()
    for error in body.get("errors") or []:
        assert (error.get("extensions") or {}).get("code") != "internal_error", error
