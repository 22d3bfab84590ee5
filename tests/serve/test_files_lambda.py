"""File routes through the Mangum handler (API Gateway HTTP API, payload v2): a PUT larger
than what API Gateway and Lambda pass to a function answers 413 naming upload grants; a
small one is stored; an S3 store redirects downloads to a presigned GET."""

from __future__ import annotations

import base64
import copy
import json
import uuid
from pathlib import Path
from typing import Any

import httpx
from tests.serve._files_backends import open_files

import persisty.aio
from persisty.serve import app, lambda_handler

EVENT = json.loads((Path(__file__).parent / "events" / "create_page_base64.json").read_text())


class Context:
    function_name = "persisty-test"
    aws_request_id = "c6af9ac6-7b61-11e6-9a41-93e812345678"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def _event(method: str, path: str, body: bytes = b"") -> dict[str, Any]:
    event: dict[str, Any] = copy.deepcopy(EVENT)
    event["rawPath"] = event["requestContext"]["http"]["path"] = path
    event["requestContext"]["http"]["method"] = method
    event["headers"]["content-type"] = "application/octet-stream"
    event["headers"]["content-length"] = str(len(body))
    event["body"] = base64.b64encode(body).decode()
    event["isBase64Encoded"] = True
    if not body:
        del event["headers"]["content-length"], event["headers"]["content-type"]
        event["body"], event["isBase64Encoded"] = "", False
    return event


def test_a_large_put_answers_413_naming_grants_and_s3_redirects() -> None:
    files = open_files("s3", "l" + uuid.uuid4().hex[:8])
    handler = lambda_handler(
        app(persisty.aio.connect("memory://"), [], files={"media": files}, file_redirect=True)
    )
    r = handler(_event("PUT", "/api/_files/media/big.bin", bytes(5_000_000)), Context())
    assert r["statusCode"] == 413
    message = json.loads(r["body"])["message"]
    assert "upload grant" in message and "Lambda" in message
    r = handler(_event("PUT", "/api/_files/media/small.bin", b"small body"), Context())
    assert r["statusCode"] == 201, r
    r = handler(_event("GET", "/api/_files/media/small.bin"), Context())
    assert r["statusCode"] == 302
    assert httpx.get(r["headers"]["location"]).content == b"small body"
    r = handler(_event("GET", "/api/_files/media/big.bin"), Context())
    assert r["statusCode"] == 404


def test_hosted_grants_behind_lambda_fit_the_function() -> None:
    files = open_files("memory", "h" + uuid.uuid4().hex[:8])
    handler = lambda_handler(app(persisty.aio.connect("memory://"), [], files={"media": files}))

    def begin(body: dict[str, Any]) -> dict[str, Any]:
        event = _event("POST", "/api/_files/media/_uploads", json.dumps(body).encode())
        event["headers"]["content-type"] = "application/json"
        result: dict[str, Any] = handler(event, Context())
        return result

    big = {"key": "big.bin", "size": 10_000_000, "content_type": "application/octet-stream"}
    r = begin(big)
    assert r["statusCode"] == 422 and json.loads(r["body"])["field"] == "part_size"
    r = begin({**big, "part_size": 1 << 20})
    assert r["statusCode"] == 201 and len(json.loads(r["body"])["parts"]) == 10
