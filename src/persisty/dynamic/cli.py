"""``persisty schema ls|show|define|alter|drop URL …`` and ``persisty import URL NAME FILE``
(the runtime-defined stores of a database's catalog).

Example::

    persisty schema define sqlite:///app.db contacts.json
    persisty schema ls sqlite:///app.db
    persisty import sqlite:///app.db contacts contacts.csv
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

import persisty
from persisty.dynamic import (
    MigrationFailed,
    catalog,
    import_rows,
    rows_of,
    spec_from_json_schema,
    spec_to_json_schema,
)
from persisty.errors import PersistyError
from persisty.model import etag

app = typer.Typer(
    help="Runtime-defined stores: list, show, define, alter, drop.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console(stderr=True)
out = Console()

Namespace = Annotated[str | None, typer.Option(help="the database namespace")]


def _fail(message: str) -> NoReturn:
    console.print(f"[red]error:[/red] {message}")
    raise typer.Exit(1)


def _read_spec(source: str, json_schema: str | None, key: str | None) -> Any:
    text = sys.stdin.read() if source == "-" else Path(source).read_text()
    try:
        data = json.loads(text)
    except ValueError as e:
        _fail(f"{source} is not JSON ({e})")
    if json_schema is not None:
        return spec_from_json_schema(json_schema, data, key)
    return data


def _definition(d: Any) -> dict[str, Any]:
    return {
        "name": d.name,
        "version": d.version,
        "state": d.state,
        "etag": etag(d),
        "owner": d.owner,
        "shared": d.shared,
        "spec": d.spec,
        "json_schema": spec_to_json_schema(d.spec),
    }


@app.command("ls")
def ls(
    url: Annotated[str, typer.Argument(help="database URL")], namespace: Namespace = None
) -> None:
    """The live definitions: name, version, attributes and etag."""
    with persisty.connect(url, namespace=namespace) as db:
        table = Table("name", "version", "attributes", "etag")
        for d in catalog(db).list():
            table.add_row(d.name, str(d.version), ", ".join(d.spec["attrs"]), etag(d))
        out.print(table)


@app.command("show")
def show(
    url: Annotated[str, typer.Argument(help="database URL")],
    name: Annotated[str, typer.Argument(help="the store's name")],
    namespace: Namespace = None,
) -> None:
    """One definition as JSON (its spec, JSON Schema and etag)."""
    with persisty.connect(url, namespace=namespace) as db:
        try:
            d = catalog(db).get(name)
        except PersistyError as e:
            _fail(e.message)
        out.print_json(json.dumps(_definition(d), default=str))


@app.command("define")
def define(
    url: Annotated[str, typer.Argument(help="database URL")],
    source: Annotated[str, typer.Argument(help="a JSON spec file (- for stdin)")],
    json_schema: Annotated[
        str | None, typer.Option(help="the file is a JSON Schema; define it under this name")
    ] = None,
    key: Annotated[str | None, typer.Option(help="the key (with --json-schema)")] = None,
    namespace: Namespace = None,
) -> None:
    """Define a store from persisty's spec (or a JSON Schema with --json-schema NAME)."""
    with persisty.connect(url, namespace=namespace) as db:
        try:
            d = catalog(db).define(_read_spec(source, json_schema, key))
        except PersistyError as e:
            _fail(f"{e.field}: {e.message}" if e.field and e.field not in e.message else e.message)
        console.print(f"defined {d.name} (version {d.version}, etag {etag(d)})")


@app.command("alter")
def alter(
    url: Annotated[str, typer.Argument(help="database URL")],
    name: Annotated[str, typer.Argument(help="the store's name")],
    source: Annotated[str, typer.Argument(help="the new JSON spec (- for stdin)")],
    if_match: Annotated[str | None, typer.Option(help="the etag it was planned on")] = None,
    migrate: Annotated[
        bool, typer.Option(help="copy the items into the new version (destructive changes)")
    ] = False,
    plan: Annotated[bool, typer.Option(help="only print the steps")] = False,
    json_schema: Annotated[bool, typer.Option(help="the file is a JSON Schema")] = False,
    key: Annotated[str | None, typer.Option(help="the key (with --json-schema)")] = None,
    namespace: Namespace = None,
) -> None:
    """Change a definition: additive changes online, --migrate for destructive ones."""
    spec = _read_spec(source, name if json_schema else None, key)
    with persisty.connect(url, namespace=namespace) as db:
        cat = catalog(db)
        try:
            steps = cat.plan(name, spec)
            for s in steps.steps:
                mark = "[red]destructive[/red]" if s.destructive else "additive"
                console.print(f"{mark}: {s.path}: {s.description}")
            if plan:
                return
            if migrate:
                report = cat.migrate(name, spec, if_match=if_match)
                console.print(f"copied {report.copied} item(s)")
            else:
                cat.alter(name, spec, if_match=if_match)
        except MigrationFailed as e:
            for err in e.report.errors[:20]:
                console.print(f"[yellow]row {err.line} ({err.key}):[/yellow] {err.message}")
            _fail(e.message)
        except PersistyError as e:
            _fail(e.message)
        d = cat.get(name)
        console.print(f"{name} is at version {d.version} (etag {etag(d)})")


@app.command("drop")
def drop(
    url: Annotated[str, typer.Argument(help="database URL")],
    name: Annotated[str, typer.Argument(help="the store's name")],
    if_match: Annotated[str | None, typer.Option(help="the etag it was seen with")] = None,
    namespace: Namespace = None,
) -> None:
    """Remove a store's items and keep a tombstone (the name can be defined anew)."""
    with persisty.connect(url, namespace=namespace) as db:
        try:
            catalog(db).drop(name, if_match=if_match)
        except PersistyError as e:
            _fail(e.message)
        console.print(f"dropped {name}")


def import_file(url: str, name: str, source: Path, *, namespace: str | None, atomic: bool) -> None:
    """``persisty import URL NAME FILE``: rows of a CSV (with a header row) or JSON Lines
    file into a runtime-defined store, with a progress bar and one line per rejected row."""
    fmt = "csv" if source.suffix.lower() == ".csv" else "jsonl"
    with persisty.connect(url, namespace=namespace) as db:
        try:
            store = catalog(db).store(name)
        except PersistyError as e:
            _fail(e.message)
        with source.open(encoding="utf-8-sig", newline="") as f:
            total = max(sum(1 for _ in f) - (1 if fmt == "csv" else 0), 0)
        progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
        )
        with progress, source.open(encoding="utf-8-sig", newline="") as f:
            task = progress.add_task(f"import {name}", total=total)
            report = import_rows(
                store,
                rows_of(f, fmt),
                cells=fmt == "csv",
                atomic=atomic,
                progress=lambda n: progress.update(task, completed=n),
            )
        for row in report.errors:
            console.print(f"[yellow]line {row.line}[/yellow] {row.field or ''}: {row.message}")
    console.print(f"imported {report.imported}, rejected {report.failed}")
    if report.failed:
        raise typer.Exit(1)
