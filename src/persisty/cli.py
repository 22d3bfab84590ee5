"""The ``persisty`` command: serve an app, export and import JSON Lines, migrate schemas.

Example::

    MESSENGER_DEMO=1 persisty serve examples.messenger.app:app --port 8000
    persisty export sqlite:///notes.db mymodule:Note -o notes.jsonl
    persisty import postgresql://localhost/db mymodule:Note notes.jsonl
    persisty migrate sqlite:///notes.db mymodule --apply
    persisty files put sqlite:///app.db avatars ann.png ./ann.png
    persisty schema define sqlite:///app.db contacts.json
    persisty import sqlite:///app.db contacts contacts.csv
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn

import msgspec
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

import persisty
from persisty.dynamic.cli import app as schema_app
from persisty.dynamic.cli import import_file
from persisty.errors import IntegrityError, PersistyError
from persisty.files.cli import app as files_app
from persisty.kv import import_rstore as run_import_rstore
from persisty.store import Edit, StoreBase

cli = typer.Typer(
    help="persisty: serve stores, export/import JSON Lines, migrate schemas.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console(stderr=True)
cli.add_typer(files_app, name="files")  # persisty files ls|put|get|rm|cp|gc|fsck
cli.add_typer(schema_app, name="schema")  # persisty schema ls|show|define|alter|drop


def load(target: str) -> Any:
    """The object named by ``module:attribute`` (or a module when there is no ``:``)."""
    if str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise typer.BadParameter(f"cannot import {module_name!r}: {e}") from None
    if not attr:
        return module
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise typer.BadParameter(f"{module_name} has no {attr!r}")
        obj = getattr(obj, part)
    return obj


def _stored_class(target: str) -> Any:
    cls = load(target)
    if not hasattr(cls, "__persisty__"):
        raise typer.BadParameter(f"{target} is not a @stored class")
    return cls


def _fail(message: str) -> NoReturn:
    console.print(f"[red]error:[/red] {message}")
    raise typer.Exit(1)


def _open_existing(url: str, namespace: str | None, cls: Any) -> Any:
    """The database at ``url`` for a command that only reads: nothing is created, and a
    missing database file, directory or store is a clear error."""
    db = persisty.connect(url, namespace=namespace)
    try:
        sql_url = getattr(db, "sql_url", None)
        path = getattr(sql_url, "path", None)
        if path and not Path(path).exists():
            _fail(f"there is no SQLite database at {path}")
        root = getattr(db, "root", None)
        if isinstance(root, Path) and not root.is_dir():
            _fail(f"there is no directory {root}")
        if not db.footprint(cls):
            where = f" in namespace {namespace!r}" if namespace else ""
            _fail(f"there is no store {cls.__persisty__.name!r}{where} at {url}")
    except PersistyError as e:
        db.close()
        _fail(e.message)
    except BaseException:
        db.close()
        raise
    return db


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )


@cli.command()
def serve(
    target: Annotated[str, typer.Argument(help="MODULE:OBJECT, an ASGI app")],
    host: Annotated[str, typer.Option(help="interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 8000,
    url: Annotated[str | None, typer.Option(help="database URL (sets PERSISTY_URL)")] = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level")] = "info",
) -> None:
    """Serve an ASGI app (e.g. one made by persisty.serve.app) with uvicorn."""
    import uvicorn

    if url:
        os.environ["PERSISTY_URL"] = url
    app = load(target)
    base = f"http://{host}:{port}"
    prefix = getattr(getattr(getattr(app, "state", None), "persisty", None), "prefix", "/api")
    console.print(f"API:     {base}{prefix}\nDocs:    {base}/docs\nGraphQL: {base}/graphql")
    uvicorn.run(app, host=host, port=port, log_level=log_level)


@cli.command("export")
def export_(
    url: Annotated[str, typer.Argument(help="database URL")],
    target: Annotated[str, typer.Argument(help="MODULE:CLASS, a @stored class")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="file (default: stdout)")
    ] = None,
    namespace: Annotated[str | None, typer.Option(help="the database namespace")] = None,
) -> None:
    """Write every item of a store as JSON Lines (one item per line).

    Nothing is created: a database, namespace or store that does not exist is an error."""
    cls = _stored_class(target)
    db = _open_existing(url, namespace, cls)
    encoder = msgspec.json.Encoder()
    try:
        store = db.store(cls)
        total = store.count()
        out = output.open("wb") if output else sys.stdout.buffer
        try:
            with _progress() as progress:
                task = progress.add_task(f"export {store.meta.name}", total=total)
                for item in store.search_all(page_size=1000):
                    out.write(encoder.encode(item) + b"\n")
                    progress.advance(task)
        finally:
            if output:
                out.close()
            else:
                out.flush()
    except PersistyError as e:
        console.print(f"[red]error:[/red] {e.message}")
        raise typer.Exit(1) from None
    finally:
        db.close()


@cli.command("import")
def import_(
    url: Annotated[str, typer.Argument(help="database URL")],
    target: Annotated[
        str, typer.Argument(help="MODULE:CLASS, a @stored class; or a runtime-defined store")
    ],
    source: Annotated[
        Path,
        typer.Argument(
            help="a JSON Lines file (or CSV for a runtime-defined store)",
            exists=True,
            dir_okay=False,
        ),
    ],
    batch: Annotated[int, typer.Option(help="items per batch", min=1, max=1000)] = 500,
    replace: Annotated[bool, typer.Option(help="overwrite items whose key exists")] = False,
    restamp: Annotated[
        bool,
        typer.Option(
            help="stamp generated values (created/updated timestamps, sequences) anew instead "
            "of restoring them"
        ),
    ] = False,
    namespace: Annotated[str | None, typer.Option(help="the database namespace")] = None,
    atomic: Annotated[bool, typer.Option(help="runtime-defined store: all rows or none")] = False,
) -> None:
    """Restore the items of a JSON Lines file exactly (--replace overwrites existing keys):
    generated values are kept as exported, so every item keeps its etag (--restamp creates
    the items as new ones instead).

    Every line is validated before anything is written; a bad line stops the import with
    its line number and field.

    A TARGET without ":" names a runtime-defined store (see persisty schema): the rows of a
    CSV file (a header row, then one item per row) or JSON Lines are created with a
    progress bar, each rejected row reported by line (--atomic: all or none).
    """
    if ":" not in target:
        import_file(url, target, source, namespace=namespace, atomic=atomic)
        return
    cls = _stored_class(target)
    meta = cls.__persisty__
    items = []
    with source.open("rb") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                items.append(meta.from_builtins(msgspec.json.decode(line)))
            except msgspec.DecodeError as e:
                console.print(f"[red]line {number}:[/red] not JSON ({e})")
                raise typer.Exit(1) from None
            except PersistyError as e:
                console.print(f"[red]line {number}:[/red] {e.message}")
                raise typer.Exit(1) from None
    db = persisty.connect(url, namespace=namespace)
    created = replaced = failed = 0
    try:
        store = db.store(cls)
        with _progress() as progress:
            task = progress.add_task(f"import {meta.name}", total=len(items))
            for start in range(0, len(items), batch):
                chunk = items[start : start + batch]
                if not restamp and isinstance(store, StoreBase):
                    results = store.restore(chunk, replace=replace)
                    for item, r in zip(chunk, results, strict=True):
                        if not r.ok:
                            failed += 1
                            console.print(f"[yellow]{meta.key_of(item)}:[/yellow] {r.message}")
                        elif r.edit.kind == "update":
                            replaced += 1
                        else:
                            created += 1
                    progress.advance(task, len(chunk))
                    continue
                edits = [Edit.create(i) for i in chunk]
                results = store.edit_batch(edits, atomic=False)
                retry = []
                for item, r in zip(chunk, results, strict=True):
                    if r.ok:
                        created += 1
                    elif r.code == "conflict" and replace:
                        retry.append(item)
                    else:
                        failed += 1
                        console.print(f"[yellow]{meta.key_of(item)}:[/yellow] {r.message}")
                if retry:
                    again = store.edit_batch([Edit.update(i) for i in retry], atomic=False)
                    replaced += sum(1 for r in again if r.ok)
                    failed += sum(1 for r in again if not r.ok)
                progress.advance(task, len(chunk))
    finally:
        db.close()
    console.print(f"created {created}, replaced {replaced}, failed {failed}")
    if failed:
        raise typer.Exit(1)


@cli.command()
def migrate(
    url: Annotated[str, typer.Argument(help="database URL")],
    module: Annotated[str, typer.Argument(help="a module with @stored classes")],
    apply: Annotated[bool, typer.Option("--apply", help="apply the plan")] = False,
    namespace: Annotated[str | None, typer.Option(help="the database namespace")] = None,
) -> None:
    """Print the schema changes the module's stores need; apply them with --apply."""
    mod = load(module)
    classes = [v for v in vars(mod).values() if isinstance(v, type) and hasattr(v, "__persisty__")]
    if not classes:
        raise typer.BadParameter(f"{module} has no @stored classes")
    db = persisty.connect(url, namespace=namespace)
    try:
        for cls in classes:
            db.store(cls)
        planner = getattr(db, "plan_migration", None)
        plan: list[str] = list(planner()) if planner else []
        if not any(step.startswith("--") for step in plan):
            plan += _unreadable(db, classes)
        if not plan:
            typer.echo("-- nothing to do")
        for step in plan:
            typer.echo(step if step.rstrip().endswith(";") or step.startswith("--") else step + ";")
        if apply and plan:
            db.migrate()
            console.print(f"applied {sum(1 for s in plan if not s.startswith('--'))} step(s)")
        elif plan:
            console.print("(dry run: add --apply to apply)")
    except PersistyError as e:
        console.print(f"[red]error:[/red] {e.message}")
        raise typer.Exit(1) from None
    finally:
        db.close()


def _unreadable(db: Any, classes: list[Any]) -> list[str]:
    """A note for each store whose stored items no longer fit its class (an attribute
    made required without a default, a changed type): no schema step fixes that."""
    notes = []
    for cls in classes:
        try:
            db.store(cls).search(limit=100)
        except IntegrityError as e:
            name = cls.__persisty__.name
            notes.append(
                f"-- not applied: stored {name} items cannot be read: {e.message}; "
                "give new or changed attributes a default, or rewrite the items "
                "(a data migration)"
            )
        except PersistyError:
            continue  # e.g. a SQL table that needs the steps above first
    return notes


@cli.command("import-rstore")
def import_rstore(
    dsn: Annotated[
        str, typer.Argument(help="rstore DSN: sqlite://FILE, postgresql://…, redis://…")
    ],
    url: Annotated[str, typer.Argument(help="persisty database URL to import into")],
    namespace: Annotated[str, typer.Option(help="the rstore namespace")] = "default",
    to_namespace: Annotated[
        str | None, typer.Option(help="the persisty.kv namespace (default: the same)")
    ] = None,
    trust_pickle: Annotated[
        bool,
        typer.Option(
            "--trust-pickle", help="unpickle rstore's values (runs code named by the data)"
        ),
    ] = False,
) -> None:
    """Copy an rstore namespace (pairs, time series, event sequences) into persisty.kv."""
    try:
        with _progress() as bar:
            task = bar.add_task("import-rstore", total=None)
            counts = run_import_rstore(
                dsn,
                url,
                namespace=namespace,
                to_namespace=to_namespace,
                trust_pickle=trust_pickle,
                total=lambda n: bar.update(task, total=n),
                progress=lambda n: bar.advance(task, n),
            )
    except PersistyError as e:
        console.print(f"[red]error:[/red] {e.message}")
        raise typer.Exit(1) from None
    console.print(
        f"imported {counts['pairs']} pair(s), {counts['points']} point(s), "
        f"{counts['events']} event(s)"
    )


def main() -> None:
    """Run the command line (the console script is :func:`persisty.__main__.main`)."""
    cli()


if __name__ == "__main__":
    main()
