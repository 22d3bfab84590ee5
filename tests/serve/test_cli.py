"""The ``persisty`` command: export and import JSON Lines, migrate, serve."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.serve.serve_models import Page
from typer.testing import CliRunner

import persisty
from persisty.cli import cli

runner = CliRunner()


def test_export_import_round_trip(tmp_path: Path) -> None:
    src = f"file://{tmp_path}/src"
    dst = f"file://{tmp_path}/dst"
    db = persisty.connect(src)
    pages = db.store(Page)
    for i in range(25):
        pages.create(Page(owner="ann", slug=f"p{i:02}", body="x" * i, views=i))
    db.close()
    out = tmp_path / "pages.jsonl"
    r = runner.invoke(cli, ["export", src, "tests.serve.serve_models:Page", "-o", str(out)])
    assert r.exit_code == 0, r.output
    lines = out.read_text().splitlines()
    assert len(lines) == 25 and json.loads(lines[3])["slug"] == "p03"
    r = runner.invoke(
        cli, ["import", dst, "tests.serve.serve_models:Page", str(out), "--batch", "10"]
    )
    assert r.exit_code == 0, r.output
    assert "created 25" in r.output
    r = runner.invoke(cli, ["import", dst, "tests.serve.serve_models:Page", str(out)])
    assert r.exit_code == 1 and "failed 25" in r.output
    changed = tmp_path / "changed.jsonl"
    changed.write_text(lines[0].replace('"body":""', '"body":"new"') + "\n")
    r = runner.invoke(
        cli, ["import", dst, "tests.serve.serve_models:Page", str(changed), "--replace"]
    )
    assert r.exit_code == 0 and "replaced 1" in r.output, r.output
    db = persisty.connect(dst)
    assert db.store(Page).count() == 25
    got = db.store(Page).read("ann:p00")
    assert got is not None and got.body == "new"
    db.close()


def test_import_rejects_a_bad_line_before_writing(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"owner": "a", "slug": "1"}\n{"owner": "a", "slug": "2", "views": -5}\n')
    url = f"file://{tmp_path}/db"
    r = runner.invoke(cli, ["import", url, "tests.serve.serve_models:Page", str(bad)])
    assert r.exit_code == 1 and "line 2" in r.output and "views" in r.output
    db = persisty.connect(url)
    assert db.store(Page).count() == 0
    db.close()
    bad.write_text("{nope\n")
    assert (
        runner.invoke(cli, ["import", url, "tests.serve.serve_models:Page", str(bad)]).exit_code
        == 1
    )
    r = runner.invoke(cli, ["export", url, "tests.serve.serve_models:Nope"])
    assert r.exit_code != 0


def test_migrate_without_changes(tmp_path: Path) -> None:
    r = runner.invoke(cli, ["migrate", f"file://{tmp_path}/db", "tests.serve.clitarget"])
    assert r.exit_code == 0, r.output
    assert "nothing to do" in r.output
    r = runner.invoke(cli, ["migrate", f"file://{tmp_path}/db", "serve_models_nope"])
    assert r.exit_code != 0


def test_serve_loads_the_app_and_runs_uvicorn(monkeypatch: Any) -> None:
    seen: dict[str, Any] = {}

    def run(app: Any, **kwargs: Any) -> None:
        seen.update(kwargs, app=app)

    import uvicorn

    monkeypatch.setattr(uvicorn, "run", run)
    r = runner.invoke(
        cli, ["serve", "tests.serve.servetarget:asgi", "--port", "8765", "--url", "memory://"]
    )
    assert r.exit_code == 0, r.output
    assert seen["port"] == 8765 and seen["host"] == "127.0.0.1"
    assert "http://127.0.0.1:8765/docs" in r.output
    assert "http://127.0.0.1:8765/graphql" in r.output


def test_migrate_plans_and_applies_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/m.db"
    db = persisty.connect(url)
    db.store(Page).count()  # the table exists now
    db.close()
    (tmp_path / "v2.py").write_text(
        "from persisty import stored, Index\n"
        "@stored(key=('owner', 'slug'), name='page', indexes=[Index('views')])\n"
        "class Page:\n"
        "    owner: str\n    slug: str\n    body: str = ''\n    views: int = 0\n"
        "    extra: str | None = None\n"
    )
    import sys

    sys.path.insert(0, str(tmp_path))
    try:
        r = runner.invoke(cli, ["migrate", url, "v2"])
        assert r.exit_code == 0, r.output
        assert "extra" in r.output and "dry run" in r.output
        r = runner.invoke(cli, ["migrate", url, "v2", "--apply"])
        assert r.exit_code == 0 and "applied" in r.output, r.output
        r = runner.invoke(cli, ["migrate", url, "v2"])
        assert "nothing to do" in r.output, r.output
    finally:
        sys.path.remove(str(tmp_path))


# ---- issue 11: exact restores, reading creates nothing, migrate sees unreadable rows -------


def test_export_then_import_is_an_exact_restore(tmp_path: Path) -> None:
    from tests.serve.serve_models import Note

    from persisty import etag

    src = f"sqlite:///{tmp_path}/src.db"
    db = persisty.connect(src)
    notes = db.store(Note)
    made = [notes.create(Note(owner="ann", title=f"n{i}", priority=i)) for i in range(12)]
    made[3] = notes.patch(str(made[3].id), {"title": "changed later"})
    db.close()
    out = tmp_path / "notes.jsonl"
    r = runner.invoke(cli, ["export", src, "tests.serve.serve_models:Note", "-o", str(out)])
    assert r.exit_code == 0, r.output
    for dst in (f"sqlite:///{tmp_path}/dst.db", f"file://{tmp_path}/dst"):
        r = runner.invoke(cli, ["import", dst, "tests.serve.serve_models:Note", str(out)])
        assert r.exit_code == 0 and "created 12" in r.output, r.output
        restored = persisty.connect(dst)
        got = restored.store(Note).read_batch([str(n.id) for n in made])
        assert got == made
        assert [etag(g) for g in got] == [etag(n) for n in made]
        again = runner.invoke(
            cli, ["import", dst, "tests.serve.serve_models:Note", str(out), "--replace"]
        )
        assert again.exit_code == 0 and "replaced 12" in again.output, again.output
        assert restored.store(Note).read_batch([str(n.id) for n in made]) == made
        restored.close()
    restamped = f"sqlite:///{tmp_path}/restamped.db"
    r = runner.invoke(
        cli, ["import", restamped, "tests.serve.serve_models:Note", str(out), "--restamp"]
    )
    assert r.exit_code == 0, r.output
    db = persisty.connect(restamped)
    first = db.store(Note).read(str(made[0].id))
    assert first is not None and first.updated_at != made[0].updated_at
    db.close()


def test_export_creates_nothing_and_fails_clearly(tmp_path: Path) -> None:
    missing = tmp_path / "typo.db"
    r = runner.invoke(cli, ["export", f"sqlite:///{missing}", "tests.serve.serve_models:Page"])
    assert r.exit_code == 1 and "no SQLite database" in r.output, r.output
    assert not missing.exists()
    r = runner.invoke(cli, ["export", f"file://{tmp_path}/nodir", "tests.serve.serve_models:Page"])
    assert r.exit_code == 1 and "no directory" in r.output
    assert not (tmp_path / "nodir").exists()
    real = f"sqlite:///{tmp_path}/real.db"
    db = persisty.connect(real)
    db.store(Page).create(Page(owner="ann", slug="a"))
    db.close()
    r = runner.invoke(cli, ["export", real, "tests.serve.serve_models:Page", "--namespace", "typo"])
    assert r.exit_code == 1 and "no store 'page' in namespace 'typo'" in r.output, r.output
    import sqlite3

    with sqlite3.connect(tmp_path / "real.db") as conn:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    assert not any(t.startswith("typo") for t in tables), tables
    r = runner.invoke(cli, ["export", real, "tests.serve.serve_models:Page"])
    assert r.exit_code == 0 and '"slug":"a"' in r.output


def test_migrate_reports_a_new_required_attribute(tmp_path: Path) -> None:
    (tmp_path / "before_mig.py").write_text(
        "from persisty import stored\n@stored\nclass Thing:\n    id: str\n    a: int = 0\n"
    )
    (tmp_path / "after_mig.py").write_text(
        "from persisty import stored\n@stored\nclass Thing:\n    id: str\n    a: int = 0\n"
        "    b: str\n"
    )
    import sys

    sys.path.insert(0, str(tmp_path))
    try:
        import before_mig  # type: ignore[import-not-found]  # written to tmp_path above

        for url in (f"file://{tmp_path}/files", f"sqlite:///{tmp_path}/m.db"):
            db = persisty.connect(url)
            db.store(before_mig.Thing).create(before_mig.Thing(id="1"))
            db.close()
            r = runner.invoke(cli, ["migrate", url, "after_mig"])
            assert r.exit_code == 0, r.output
            assert "nothing to do" not in r.output, r.output
            assert "-- not applied" in r.output and "default" in r.output, r.output
    finally:
        sys.path.remove(str(tmp_path))


def test_help_has_no_raw_restructuredtext() -> None:
    """Command help is plain text: no ``double backticks`` from docstrings."""
    from persisty.cli import cli

    for args in (
        ["--help"],
        ["serve", "--help"],
        ["export", "--help"],
        ["import", "--help"],
        ["migrate", "--help"],
    ):
        result = runner.invoke(cli, args, env={"COLUMNS": "200", "NO_COLOR": "1"})
        assert result.exit_code == 0, result.output
        assert "``" not in result.output and ":func:" not in result.output, result.output
