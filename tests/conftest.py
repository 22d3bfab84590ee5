"""Engine URLs for the tests. scripts/test (via scripts/services) starts the engines and
exports these; the defaults are the machine's own servers on 127.0.0.1. A test whose engine
cannot be reached fails: nothing is skipped for a missing server."""

from __future__ import annotations

import os

POSTGRES_URL = os.environ.get("PERSISTY_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
MYSQL_URL = os.environ.get("PERSISTY_TEST_MYSQL", "mysql://root@127.0.0.1:3306/test")
REDIS_URL = os.environ.get("PERSISTY_TEST_REDIS", "redis://127.0.0.1:6379/0")
DYNAMODB_URL = os.environ.get("PERSISTY_TEST_DYNAMODB", "")
