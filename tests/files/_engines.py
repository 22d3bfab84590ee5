"""The engines and the S3 bucket the file store tests run on (moto_server, started by
scripts/services, for DynamoDB and S3; a run without it fails, nothing is skipped)."""

from __future__ import annotations

import contextlib
import os
import tempfile
import uuid
from pathlib import Path

import pytest
from tests.conftest import MYSQL_URL, POSTGRES_URL, REDIS_URL

NAMESPACE = "filestest"
ROOT = Path(tempfile.mkdtemp(prefix="persisty-files-"))
SQLITE_URL = f"sqlite:///{ROOT / 'files.db'}"


def endpoint() -> str:
    """moto_server's URL."""
    url = os.environ.get("AWS_ENDPOINT_URL", "")
    if not url:
        pytest.fail(
            "AWS_ENDPOINT_URL is not set: run the tests with scripts/test, or "
            "`source scripts/services` first (it starts moto_server)"
        )
    return url


def dynamodb_url() -> str:
    """The DynamoDB URL on moto_server."""
    return f"dynamodb://?region=us-east-1&endpoint_url={endpoint()}"


_BUCKETS: set[str] = set()


def s3_url(prefix: str = "t") -> str:
    """An ``s3://`` URL on a bucket of moto_server (created once per run)."""
    import boto3

    bucket = "persisty-files-" + (os.environ.get("PERSISTY_FILES_BUCKET") or "test")
    if bucket not in _BUCKETS:
        client = boto3.client("s3", endpoint_url=endpoint(), region_name="us-east-1")
        with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou):
            client.create_bucket(Bucket=bucket)
        _BUCKETS.add(bucket)
    return (
        f"s3://{bucket}/{prefix}{uuid.uuid4().hex[:8]}?region=us-east-1&endpoint_url={endpoint()}"
    )


ENGINES = {
    "memory": "memory://",
    "file": f"file://{ROOT / 'filedb'}",
    "sqlite": SQLITE_URL,
    "postgres": POSTGRES_URL,
    "mariadb": MYSQL_URL,
    "redis": REDIS_URL,
}
