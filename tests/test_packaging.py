"""A plain ``pip install persisty`` (no extras) runs its own default: the wheel is built from
this checkout and installed into a clean virtual environment, which then creates, reads,
searches and closes on the default SQLite URL, sync and async, and runs ``persisty --help``.

The wheel's dependencies come from pip's configured index and cache (the machine's local
index here), so the test needs no network beyond what ``scripts/setup`` already uses.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

FIRST_HOUR = """
import asyncio, persisty
from persisty import F, stored

@stored
class Note:
    id: str
    owner: str
    title: str = ""

with persisty.connect() as db:                       # sqlite:///persisty.db
    notes = db.store(Note)
    notes.create(Note(id="n1", owner="ann", title="Hello"))
    assert notes.read("n1") == Note(id="n1", owner="ann", title="Hello")
    assert [n.id for n in notes.search(F.owner == "ann").items] == ["n1"]

async def main() -> None:
    async with persisty.aio.connect() as db:
        notes = db.store(Note)
        await notes.create(Note(id="n2", owner="ann"))
        assert await notes.read("n1") is not None
        assert (await notes.search(F.owner == "ann")).items[1].id == "n2"
        assert await notes.count(None) == 2

asyncio.run(main())
print("sqlite sync and async: ok")
"""


def _run(args: list[str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"PYTHONPATH", "PERSISTY_URL", "VIRTUAL_ENV"}
    }
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    built = _run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(out),
            str(ROOT),
        ],
        cwd=out,
    )
    assert built.returncode == 0, built.stderr
    (path,) = out.glob("persisty-*.whl")
    return path


def test_the_wheel_ships_the_browser_assets_and_typing_marker(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "persisty/py.typed" in names
    static = [n for n in names if n.startswith("persisty/serve/static/")]
    for asset in (
        "swagger-ui-5.35.0/swagger-ui-bundle.js",
        "swagger-ui-5.35.0/swagger-ui.css",
        "swagger-ui-5.35.0/LICENSE",
        "graphiql-3.8.3/graphiql.min.js",
        "graphiql-3.8.3/LICENSE",
        "react-18.3.1/react.production.min.js",
        "react-18.3.1/LICENSE",
        "react-dom-18.3.1/react-dom.production.min.js",
        "react-dom-18.3.1/LICENSE",
    ):
        assert f"persisty/serve/static/{asset}" in static, asset
    # the admin UI's templates, stylesheet and script (served from the app's own origin)
    for name in (
        "static/admin.css",
        "static/admin.js",
        "static/favicon.svg",
        "templates/base.html",
        "templates/list.html",
        "templates/form.html",
        "templates/detail.html",
        "templates/login.html",
        "templates/_effects.html",
    ):
        assert f"persisty/serve/admin/{name}" in names, name


def test_a_plain_install_runs_sqlite_and_the_command(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    made = _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    python = venv / "bin" / "python"
    installed = _run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", str(wheel)],
        cwd=tmp_path,
    )
    assert installed.returncode == 0, installed.stderr
    work = tmp_path / "work"
    work.mkdir()
    # nothing beyond the base dependencies: no extra's driver may be importable
    bare = _run(
        [
            str(python),
            "-c",
            "import importlib.util as u; print([m for m in "
            "('typer', 'starlette', 'psycopg', 'redis', 'boto3') if u.find_spec(m)])",
        ],
        cwd=work,
    )
    assert bare.stdout.strip() == "[]", bare.stdout + bare.stderr
    used = _run([str(python), "-c", FIRST_HOUR], cwd=work)
    assert used.returncode == 0, used.stderr
    assert "sqlite sync and async: ok" in used.stdout
    assert (work / "persisty.db").exists()
    helped = _run([str(venv / "bin" / "persisty"), "--help"], cwd=work)
    assert helped.returncode == 0, helped.stderr
    assert helped.stderr.strip().splitlines() == [
        'persisty: the command line needs the serve extra: pip install "persisty[serve]"'
    ]
    refused = _run([str(venv / "bin" / "persisty"), "serve", "x:app"], cwd=work)
    assert refused.returncode == 1 and "persisty[serve]" in refused.stderr
