"""``persisty schema …`` and ``persisty import URL NAME FILE.csv``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

import persisty
from persisty.cli import cli
from persisty.dynamic import catalog

runner = CliRunner()
PEOPLE: dict[str, Any] = {
    "name": "people",
    "key": "email",
    "attrs": {"email": {"type": "str"}, "age": {"type": "int", "ge": 0}},
}


def test_schema_commands(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    spec = tmp_path / "people.json"
    spec.write_text(json.dumps(PEOPLE))
    r = runner.invoke(cli, ["schema", "define", url, str(spec)])
    assert r.exit_code == 0, r.output
    r = runner.invoke(cli, ["schema", "ls", url])
    assert "people" in r.output and r.exit_code == 0
    r = runner.invoke(cli, ["schema", "show", url, "people"])
    shown = json.loads(r.stdout)
    assert shown["version"] == 1 and sorted(shown["json_schema"]["required"]) == ["age", "email"]
    wider = {**PEOPLE, "attrs": {**PEOPLE["attrs"], "city": {"type": "str", "optional": True}}}
    spec.write_text(json.dumps(wider))
    r = runner.invoke(cli, ["schema", "alter", url, "people", str(spec), "--if-match", "nope"])
    assert r.exit_code == 1 and "changed since etag" in r.output
    r = runner.invoke(
        cli, ["schema", "alter", url, "people", str(spec), "--if-match", shown["etag"]]
    )
    assert r.exit_code == 0, r.output
    spec.write_text(json.dumps({"name": "people", "key": "email", "attrs": {"email": "str"}}))
    r = runner.invoke(cli, ["schema", "alter", url, "people", str(spec)])
    assert r.exit_code == 1 and "destructive" in r.output and "migrate" in r.output
    r = runner.invoke(cli, ["schema", "alter", url, "people", str(spec), "--migrate"])
    assert r.exit_code == 0, r.output
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"name": "1x", "attrs": {"id": "str"}}))
    r = runner.invoke(cli, ["schema", "define", url, str(bad)])
    assert r.exit_code == 1 and "name" in r.output
    assert runner.invoke(cli, ["schema", "drop", url, "people"]).exit_code == 0
    assert runner.invoke(cli, ["schema", "show", url, "people"]).exit_code == 1


def test_import_a_thousand_rows_with_three_bad_ones(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'imp.db'}"
    with persisty.connect(url) as db:
        catalog(db).define(PEOPLE)
    rows = ["email,age"] + [f"u{i}@x,{-1 if i in (3, 400, 999) else i % 90}" for i in range(1000)]
    csv = tmp_path / "people.csv"
    csv.write_text("\n".join(rows) + "\n")
    r = runner.invoke(cli, ["import", url, "people", str(csv), "--atomic"])
    assert r.exit_code == 1
    with persisty.connect(url) as db:
        assert catalog(db).store("people").count() == 0
    r = runner.invoke(cli, ["import", url, "people", str(csv)])
    assert r.exit_code == 1
    assert "imported 997, rejected 3" in r.output
    for line in (5, 402, 1001):
        assert f"line {line} age" in r.output
    with persisty.connect(url) as db:
        assert catalog(db).store("people").count() == 997
