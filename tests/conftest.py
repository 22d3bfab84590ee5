"""Engine URLs for the tests. scripts/test (via scripts/services) starts the engines and
exports these; the defaults are the machine's own servers on 127.0.0.1. A test whose engine
cannot be reached fails: nothing is skipped for a missing server."""

from __future__ import annotations

import inspect
import os
import re
from typing import Any

import pytest

POSTGRES_URL = os.environ.get("PERSISTY_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
MYSQL_URL = os.environ.get("PERSISTY_TEST_MYSQL", "mysql://root@127.0.0.1:3306/test")
REDIS_URL = os.environ.get("PERSISTY_TEST_REDIS", "redis://127.0.0.1:6379/0")
DYNAMODB_URL = os.environ.get("PERSISTY_TEST_DYNAMODB", "")

# What makes a test an `engines` test (scripts/check leaves those out): a URL or a name of a
# server the test or one of its fixtures uses, a browser, or a child process. Read from the
# test's source, its fixtures' sources and its parameters, so a new test is classified
# without anyone remembering to mark it.
_ENGINE_WORDS = re.compile(
    r"postgres|mysql|mariadb|redis|dynamodb|\bs3\b|S3|moto|AWS_ENDPOINT|PERSISTY_TEST_"
    r"|chromium|playwright|subprocess|multiprocessing|_URL\b",
    re.IGNORECASE,
)


def _source(obj: Any) -> str:
    try:
        return inspect.getsource(obj)
    except (OSError, TypeError):
        return ""


def _uses_engines(item: pytest.Item) -> bool:
    texts = [item.nodeid, _source(getattr(item, "obj", None))]
    cls = getattr(item, "cls", None)
    if cls is not None:  # the test classes' own code (not the suites of persisty.testing)
        texts += [
            _source(base)
            for base in cls.__mro__
            if not base.__module__.startswith(("persisty", "builtins", "typing"))
        ]
    info = getattr(item, "_fixtureinfo", None)
    for defs in info.name2fixturedefs.values() if info is not None else ():
        texts += [_source(d.func) for d in defs]
    callspec = getattr(item, "callspec", None)
    if callspec is not None:
        texts.append(repr(callspec.params) + " " + callspec.id)
    return any(_ENGINE_WORDS.search(t) for t in texts)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if _uses_engines(item):
            item.add_marker(pytest.mark.engines)
