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
    r"|chromium|playwright|subprocess|multiprocessing|_URL\b|\blaunch\(\)",
    re.IGNORECASE,
)


_SOURCES: dict[Any, bool] = {}


def _source(obj: Any) -> str:
    try:
        return inspect.getsource(obj)
    except (OSError, TypeError):
        return ""


def _names_engines(obj: Any) -> bool:
    """Whether the source of ``obj`` names an engine (read once per function or class)."""
    obj = getattr(obj, "__func__", obj)
    try:
        return _SOURCES[obj]
    except KeyError:
        found = _SOURCES[obj] = bool(_ENGINE_WORDS.search(_source(obj)))
        return found
    except TypeError:  # not hashable
        return bool(_ENGINE_WORDS.search(_source(obj)))


def _uses_engines(item: pytest.Item) -> bool:
    if _ENGINE_WORDS.search(item.nodeid) or _names_engines(getattr(item, "obj", None)):
        return True
    cls = getattr(item, "cls", None)
    if cls is not None and any(  # the test classes' own code (not the suites of persisty.testing)
        _names_engines(base)
        for base in cls.__mro__
        if not base.__module__.startswith(("persisty", "builtins", "typing"))
    ):
        return True
    info = getattr(item, "_fixtureinfo", None)
    for defs in info.name2fixturedefs.values() if info is not None else ():
        if any(_names_engines(d.func) for d in defs):
            return True
    callspec = getattr(item, "callspec", None)
    return callspec is not None and bool(
        _ENGINE_WORDS.search(repr(callspec.params) + " " + callspec.id)
    )


# What makes a test `slow` (scripts/check leaves those out too; scripts/test runs them): the
# contract again on the backends the memory run already covers in scripts/check (directory,
# SQLite, generated classes on the directory), large property and fuzz runs over HTTP, and a
# child process that waits for an exit. Node-id prefixes or test names.
_SLOW = (
    "tests/conformance/test_directory.py::",
    "tests/conformance/test_sql.py::TestSqlite",
    "tests/dynamic/test_conformance.py::TestDirectory",
    "tests/serve/test_schemathesis.py::",
    "tests/serve/test_admin_scale.py::",
    "tests/serve/test_files_ranges.py::test_500_random_range_headers",
    "tests/serve/test_graphql_fuzz.py::",
    "tests/serve/test_query_over_http.py::test_search_over_http_matches_the_evaluator",
)
_SLOW_NAMES = ("test_a_database_never_closed_does_not_hold_up_exit",)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if _uses_engines(item):
            item.add_marker(pytest.mark.engines)
        if item.nodeid.startswith(_SLOW) or getattr(item, "originalname", "") in _SLOW_NAMES:
            item.add_marker(pytest.mark.slow)
