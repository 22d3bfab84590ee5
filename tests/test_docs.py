"""Every ```python block of README.md and docs/*.md runs, so a documented example cannot rot.

The blocks of one file run in order in one namespace (a module of its own), in a fresh
temporary working directory, with ``$PERSISTY_URL`` unset (so ``connect()`` opens
``sqlite:///persisty.db`` there). A block fenced as ```python no-run is a fragment and is
skipped. Pages about a server engine use the 127.0.0.1 URLs of the machine's servers;
DynamoDB and S3 pages rely on ``AWS_ENDPOINT_URL``, which ``source scripts/services``
exports (boto3 reads it), so they never reach AWS. Every ``connect()`` of a page gets a
namespace of its own (the page's namespace behind a random prefix), so runs in parallel
never share tables.

The ``Example::`` blocks of the public API's docstrings run the same way, in a namespace
that already has a ``Note`` model, a ``db`` (``memory://``) and its ``notes`` store.
"""

from __future__ import annotations

import asyncio
import gc
import inspect
import os
import re
import sys
import textwrap
import types
import uuid
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import persisty
import persisty.aio

ROOT = Path(__file__).resolve().parent.parent
DOC_FILES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^(\s*)(`{3,}|~{3,})\s*([^`]*)$")
SERVER_ENGINES = ("dynamodb://", "s3://")


@dataclass(frozen=True)
class Block:
    """One fenced code block: where it starts, its info string, its code."""

    path: Path
    line: int
    info: str
    code: str

    @property
    def runs(self) -> bool:
        words = self.info.split()
        return bool(words) and words[0] == "python" and "no-run" not in words[1:]

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def blocks(path: Path) -> list[Block]:
    """The fenced blocks of a Markdown file, in order (fences may be indented, as in lists)."""
    result = []
    lines = path.read_text().splitlines()
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, fence, info = m.group(1), m.group(2), m.group(3).strip()
        body = []
        j = i + 1
        while j < len(lines) and not (
            lines[j].strip().startswith(fence) and lines[j].strip().strip(fence[0]) == ""
        ):
            body.append(lines[j][len(indent) :] if lines[j].startswith(indent) else lines[j])
            j += 1
        result.append(Block(path, i + 1, info, "\n".join(body) + "\n"))
        i = j + 1
    return result


def _isolating(connect: Callable[..., Any], prefix: str) -> Callable[..., Any]:
    """``connect`` with every namespace behind ``prefix`` (parallel runs share no table)."""

    def wrapped(
        url: str | None = None, *args: Any, namespace: str | None = None, **kwargs: Any
    ) -> Any:
        return connect(url, *args, namespace=f"{prefix}{namespace or 'docs'}"[:40], **kwargs)

    wrapped.__doc__ = connect.__doc__
    return wrapped


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A temporary working directory, no ``$PERSISTY_URL``, namespaced connects."""
    prefix = "d" + uuid.uuid4().hex[:8] + "_"
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PERSISTY_URL", raising=False)
    monkeypatch.setattr(persisty, "connect", _isolating(persisty.connect, prefix))
    monkeypatch.setattr(persisty.aio, "connect", _isolating(persisty.aio.connect, prefix))
    yield tmp_path


def run_blocks(
    name: str,
    runnable: list[Block],
    namespace: dict[str, Any] | None = None,
    *,
    top_level_await: bool = False,
) -> None:
    """Run ``runnable`` in order in one fresh module; a failure names the block's line."""
    module = types.ModuleType(name)
    module.__dict__.update(namespace or {})
    sys.modules[name] = module  # dataclasses and type hints look their module up by name
    try:
        for block in runnable:
            flags = 0
            if top_level_await:
                import ast

                flags = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
            try:
                code = compile(block.code, block.where, "exec", flags=flags)
                if code.co_flags & inspect.CO_COROUTINE:
                    asyncio.run(eval(code, module.__dict__))
                else:
                    exec(code, module.__dict__)
            except Exception as e:
                raise AssertionError(
                    f"the block at {block.where} failed: {type(e).__name__}: {e}\n{block.code}"
                ) from e
    finally:
        del sys.modules[name]


def test_every_doc_file_is_found() -> None:
    assert (ROOT / "README.md") in DOC_FILES and len(DOC_FILES) > 1


def test_the_parser_reads_fences_and_no_run(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "text\n```python\nx = 1\n```\n- item\n  ```python no-run\n  y\n  ```\n```bash\nls\n```\n"
    )
    found = blocks(page)
    assert [(b.line, b.info, b.runs) for b in found] == [
        (2, "python", True),
        (6, "python no-run", False),
        (9, "bash", False),
    ]
    assert found[0].code == "x = 1\n" and found[1].code == "y\n"


@pytest.mark.timeout(300)
@pytest.mark.parametrize("path", DOC_FILES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_python_blocks_run(path: Path, isolated: Path) -> None:
    runnable = [b for b in blocks(path) if b.runs]
    if not runnable:
        return
    text = "".join(b.code for b in runnable)
    if any(e in text for e in SERVER_ENGINES):
        assert os.environ.get("AWS_ENDPOINT_URL"), (
            f"{path.name} talks to DynamoDB/S3: run it under scripts/test, or "
            "`source scripts/services` first (it exports AWS_ENDPOINT_URL for moto_server)"
        )
    run_blocks(f"docs_{path.stem.replace('-', '_')}", runnable)


# ---- the Example:: blocks of the public API's docstrings ----------------------------------

EXAMPLE = re.compile(r"^(\s*)Example::\s*$")


def docstring_examples(obj: Any) -> list[str]:
    """The code of each ``Example::`` literal block of ``obj``'s docstring."""
    doc = inspect.getdoc(obj) or ""
    lines = doc.splitlines()
    result = []
    for i, line in enumerate(lines):
        m = EXAMPLE.match(line)
        if not m:
            continue
        base = len(m.group(1))
        body = []
        for nxt in lines[i + 1 :]:
            if nxt.strip() and len(nxt) - len(nxt.lstrip()) <= base:
                break
            body.append(nxt)
        result.append(textwrap.dedent("\n".join(body)).strip() + "\n")
    return result


def test_the_readme_quickstart_passes_mypy_strict(tmp_path: Path) -> None:
    """The quickstart (and its asyncio form) type-checks as a user would check it."""
    from mypy import api

    quickstart = [b for b in blocks(ROOT / "README.md") if b.runs][:2]
    assert "@stored" in quickstart[0].code and "asyncio.run" in quickstart[1].code
    source = tmp_path / "quickstart.py"
    source.write_text("".join(b.code for b in quickstart))
    out, err, status = api.run(
        ["--strict", "--no-error-summary", "--cache-dir", str(ROOT / ".mypy_cache"), str(source)]
    )
    assert status == 0, out + err


# What the API's Example:: blocks may take as given (as the page around an example would):
# the usual imports, a Note model, a db (memory://, async for examples that await) with a
# notes store and a few items, their keys and etag, keys for encryption, a related pair of
# models, a hook and an index. An example needing anything else defines it itself.
EXAMPLE_CONTEXT = """
import dataclasses
from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace
from typing import TypeVar
from uuid import UUID, uuid4

import persisty
from persisty import *
from persisty.errors import *
from persisty.layers import *
from persisty.model import *
from persisty.query import *
from persisty.serve import DemoAuthenticator, JWTAuth, Link, app
from persisty.store import *

T = TypeVar("T")

@dataclasses.dataclass
class Address:
    street: str = ""
    city: str = ""

@stored
class Note:
    id: UUID = Attr(default_factory=uuid4)
    owner: str = ""
    title: str = ""
    priority: int = 0
    tags: list[str] = Attr(default_factory=list)
    body: str | None = None
    address: Address | None = None
    team: str = ""
    locked: bool = False
    created_at: datetime = Attr(generated="created", default=None)
    updated_at: datetime = Attr(generated="updated", default=None)

@stored
class Author:
    id: str
    name: str = ""
    books = HasMany("Book", "author_id", on_delete="cascade")

@stored
class Book:
    id: UUID = Attr(default_factory=uuid4)
    title: str = ""
    year: int = 2000
    author_id: str | None = None
    author = BelongsTo(Author, "author_id")

@dataclasses.dataclass
class Visit:
    notes: str = ""

@stored
class Patient:
    id: str
    birthday: date | None = None
    weight: float | None = None
    visits: list[Visit] = Attr(default_factory=list)

key1, key2 = KeyRing.new_key(), KeyRing.new_key()
old = old_key = key1
new = new_key = key2
k = KeyRing({"k1": key1})
auth = JWTAuth(secret="a long random secret of 32+ bytes")
a = Note(owner="ann", title="not stored yet")
db = CONNECT("memory://")
sql_db = CONNECT("sqlite:///app.db")
store = notes = db.store(Note)
n = AWAIT notes.create(Note(owner="ann", title="Hello"))
key, tag = notes.key_of(n), etag(n)
other_key = notes.key_of(AWAIT notes.create(Note(owner="ann", title="Other")))
bobs_key = notes.key_of(AWAIT notes.create(Note(owner="bob", title="Bob's")))
AWAIT db.store(Author).create(Author(id="a1", name="Ursula"))
AWAIT db.store(Book).create(Book(title="The Dispossessed", year=2001, author_id="a1"))
def reindex(change): pass
search_index = SimpleNamespace(put=reindex)
"""
ASYNC_EXTRAS = """
async def reindex(change, *rest): pass
search_index = SimpleNamespace(put=reindex)
"""
PUBLIC_MODULES = [
    "persisty",
    "persisty.aio",
    "persisty.errors",
    "persisty.layers",
    "persisty.dynamic",
    "persisty.model",
    "persisty.query",
    "persisty.serve",
    "persisty.sql",
    "persisty.store",
    "persisty.stash",
    "persisty.memo",
    "persisty.kv",
    "persisty.files",
    "persisty.files.aio",
    "persisty.serve.admin",
    "persisty.testing",
]
OWN_NAMESPACE = ("persisty.stash", "persisty.memo", "persisty.kv")
OWN_NAMESPACE_CONTEXT = """
import operator, pickle
from datetime import timedelta
from pathlib import Path
from persisty.kv import ASYNCEventLog
from persisty.stash import ASYNCDictionaryStash
path = Path("stash-dir")
WORDS = ["apple", "pear"]
def square(key): return int(key) ** 2
def expensive(year): return year
def fetch(symbol): return 1.0
def Squares(): return ASYNCDictionaryStash({"3": 9})
note_id = n.id
stash = local = ASYNCDictionaryStash({"a": 1, "b": 2, "c": 3})
shared = ASYNCDictionaryStash()
log = ASYNCEventLog(db)
"""
NEEDS_A_SERVER = ("postgresql://", "mysql://", "redis://", "dynamodb://", "s3://")


def public_examples() -> Iterator[tuple[str, str]]:
    """(where, code) of every Example:: block of the public modules and their ``__all__``."""
    import importlib

    seen: set[int] = set()
    for module_name in PUBLIC_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        found: list[tuple[str, Any]] = [(module_name, module)]
        for name in getattr(module, "__all__", []):
            obj = getattr(module, name)
            found.append((f"{module_name}.{name}", obj))
            if inspect.isclass(obj):
                found += [
                    (f"{module_name}.{name}.{attr}", value)
                    for attr, value in vars(obj).items()
                    if not attr.startswith("_")
                ]
        for where, obj in found:
            if isinstance(obj, staticmethod | classmethod):
                obj = obj.__func__
            if isinstance(obj, property):
                obj = obj.fget
            if not getattr(obj, "__doc__", None) or id(obj) in seen:
                continue
            seen.add(id(obj))
            for code in docstring_examples(obj):
                yield where, code


FILES_CONTEXT = """
from persisty.files import *
files = db.files("docs")
AWAIT files.put("a.txt", b"hello", content_type="text/plain")
AWAIT files.put("a.bin", bytes(range(256)) * 8)
n = 5
"""

EXAMPLES = list(public_examples())


def test_the_public_api_has_examples() -> None:
    assert len(EXAMPLES) > 50


@pytest.mark.parametrize(("where", "code"), EXAMPLES, ids=[w for w, _ in EXAMPLES])
def test_docstring_example_runs(where: str, code: str, isolated: Path) -> None:
    if any(url in code for url in NEEDS_A_SERVER):
        return  # an example naming a server engine is a fragment for that engine
    asynchronous = (
        "await " in code or "async " in code or where.startswith(("persisty.serve", "persisty.aio"))
    )
    context = EXAMPLE_CONTEXT.replace(
        "CONNECT", "persisty.aio.connect" if asynchronous else "persisty.connect"
    )
    context = context.replace("AWAIT ", "await " if asynchronous else "")
    if asynchronous:
        context += ASYNC_EXTRAS
    module = next((m for m in OWN_NAMESPACE if where == m or where.startswith(m + ".")), None)
    if module is not None:  # examples of these name their module's classes unqualified
        asynchronous = asynchronous or ".Async" in where
        context = EXAMPLE_CONTEXT.replace(
            "CONNECT", "persisty.aio.connect" if asynchronous else "persisty.connect"
        ).replace("AWAIT ", "await " if asynchronous else "")
        context += ASYNC_EXTRAS if asynchronous else ""
        context += f"from {module} import *\n" + OWN_NAMESPACE_CONTEXT.replace(
            "ASYNC", "Async" if asynchronous else ""
        )
    if where.startswith("persisty.files"):  # examples of file stores name one ``files``
        context += FILES_CONTEXT.replace("AWAIT ", "await " if asynchronous else "")
    block = Block(ROOT / "README.md", 0, "python", context + code)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RuntimeWarning)
        try:
            # a module of its own: relation targets named by string resolve in it
            run_blocks("docstring_" + re.sub(r"\W", "_", where), [block], top_level_await=True)
        except AssertionError as e:
            raise AssertionError(
                f"the Example:: of {where} failed:\n{code}\n{e.__cause__!r}"
            ) from e
        gc.collect()  # a coroutine nobody awaited warns when it is collected
    unawaited = [str(w.message) for w in caught if "never awaited" in str(w.message)]
    assert unawaited == [], f"the Example:: of {where} leaves coroutines unawaited:\n{code}"
