"""AWS Lambda: the app behind API Gateway HTTP APIs, invoked with recorded v2 events."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.serve.serve_models import Page

import persisty.aio
from persisty.serve import app, lambda_handler

EVENTS = Path(__file__).parent / "events"


class Context:
    function_name = "persisty-test"
    aws_request_id = "c6af9ac6-7b61-11e6-9a41-93e812345678"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def invoke(handler: Any, name: str) -> dict[str, Any]:
    event = json.loads((EVENTS / name).read_text())
    result: dict[str, Any] = handler(event, Context())
    return result


def test_api_gateway_v2_events() -> None:
    handler = lambda_handler(app(persisty.aio.connect("memory://"), [Page]))
    r = invoke(handler, "create_page.json")
    assert r["statusCode"] == 201
    assert r["headers"]["location"] == "/api/page/ann%3Ahome"
    assert json.loads(r["body"])["body"] == "hello"
    r = invoke(handler, "create_page_base64.json")
    assert r["statusCode"] == 201, r
    r = invoke(handler, "read_page.json")
    assert r["statusCode"] == 200 and json.loads(r["body"])["slug"] == "home"
    assert r["headers"]["etag"].startswith('"')
    r = invoke(handler, "search_pages.json")
    assert [p["slug"] for p in json.loads(r["body"])["items"]] == ["home", "b64"]
    r = invoke(handler, "bad_json.json")
    assert r["statusCode"] == 400 and json.loads(r["body"])["code"] == "bad_request"
    r = invoke(handler, "missing_page.json")
    assert r["statusCode"] == 404 and json.loads(r["body"])["code"] == "not_found"


def test_graphql_and_jwt_through_lambda() -> None:
    from tests.serve.serve_models import Note

    from persisty.layers import Policy
    from persisty.serve import JWTAuth

    auth = JWTAuth(secret="lambda-test-secret-long-enough-for-hs256")
    handler = lambda_handler(
        app(
            persisty.aio.connect("memory://"),
            [Page, Note],
            auth=auth,
            anonymous=[Page],
            policies={Note: Policy.owner("owner"), Page: Policy.allow_all()},
        )
    )
    invoke(handler, "create_page.json")
    r = invoke(handler, "graphql_pages.json")
    assert json.loads(r["body"]) == {
        "data": {"pageCount": 1, "pageSearch": {"items": [{"slug": "home"}]}}
    }
    r = invoke(handler, "search_notes_without_token.json")
    assert r["statusCode"] == 401 and r["headers"]["www-authenticate"].startswith("Bearer")
    r = invoke(handler, "create_note_with_token.json")  # a token recorded with exp in 2100
    assert r["statusCode"] == 201 and json.loads(r["body"])["owner"] == "ann"
