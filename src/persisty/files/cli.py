"""``persisty files …``: list, upload, download, delete, copy, gc and fsck a file store.

``URL`` is a database URL (the file store's chunks and catalog live there), or
``dir:///path``, ``s3://bucket/prefix?…`` or ``memory://`` with ``--catalog DB_URL``;
``STORE`` is the file store's name.

Example::

    persisty files put sqlite:///app.db avatars ann.png ./ann.png
    persisty files ls sqlite:///app.db avatars --prefix a
    persisty files get sqlite:///app.db avatars ann.png -o copy.png
    persisty files fsck dir:///var/lib/app/files avatars --catalog sqlite:///app.db
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, BinaryIO

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from persisty.errors import PersistyError
from persisty.files import FileStore, connect

app = typer.Typer(
    help="Binary files: ls, put, get, rm, cp, gc, fsck.", no_args_is_help=True, add_completion=False
)
console = Console(stderr=True)
PIECE = 1024 * 1024
PROGRESS_FROM = 4 * 1024 * 1024  # smaller transfers print no bar

UrlArg = Annotated[str, typer.Argument(help="database URL, dir://, s3:// or memory://")]
StoreArg = Annotated[str, typer.Argument(help="the file store's name")]
CatalogOpt = Annotated[
    str | None, typer.Option(help="the catalog's database URL (for dir:// and s3://)")
]
NamespaceOpt = Annotated[str | None, typer.Option(help="the database namespace")]


@contextmanager
def _opened(
    url: str, store: str, catalog: str | None, namespace: str | None
) -> Iterator[FileStore]:
    """The file store, closed afterwards; a persisty error (opening it too) is one red line
    and exit status 1, never a traceback."""
    try:
        files = connect(url, name=store, catalog=catalog, namespace=namespace)
    except PersistyError as e:
        raise _fail(e) from None
    try:
        yield files
    except PersistyError as e:
        raise _fail(e) from None
    finally:
        files.close()


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=console,
    )


def _fail(e: PersistyError) -> typer.Exit:
    console.print(f"[red]error:[/red] {e.code}: {e.message}")
    return typer.Exit(1)


@app.command("ls")
def ls(
    url: UrlArg,
    store: StoreArg,
    prefix: Annotated[str, typer.Option(help="only keys starting with this")] = "",
    catalog: CatalogOpt = None,
    namespace: NamespaceOpt = None,
) -> None:
    """List files: size, content type, etag, key."""
    with _opened(url, store, catalog, namespace) as files:
        for info in files.list_all(prefix):
            typer.echo(f"{info.size:>12}  {info.content_type:<28} {info.etag[:12]}  {info.key}")


@app.command("put")
def put(
    url: UrlArg,
    store: StoreArg,
    key: Annotated[str, typer.Argument(help="the file's key")],
    path: Annotated[Path, typer.Argument(help="a local file, or - for stdin", allow_dash=True)],
    content_type: Annotated[str | None, typer.Option(help="default: sniffed")] = None,
    catalog: CatalogOpt = None,
    namespace: NamespaceOpt = None,
) -> None:
    """Upload a local file (or stdin) under KEY."""
    with _opened(url, store, catalog, namespace) as files:
        source: BinaryIO = sys.stdin.buffer if str(path) == "-" else path.open("rb")
        total = None if str(path) == "-" else path.stat().st_size
        with source, _progress() as progress:
            task = progress.add_task(
                f"put {key}", total=total, visible=total is None or total >= PROGRESS_FROM
            )

            def pieces() -> Iterator[bytes]:
                while piece := source.read(PIECE):
                    progress.advance(task, len(piece))
                    yield piece

            info = files.put(
                key,
                pieces(),
                content_type=content_type,
                filename=None if str(path) == "-" else path.name,
            )
        typer.echo(f"{info.key}  {info.size} bytes  {info.content_type}  {info.etag}")


@app.command("get")
def get(
    url: UrlArg,
    store: StoreArg,
    key: Annotated[str, typer.Argument(help="the file's key")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="a local file (default: stdout)")
    ] = None,
    catalog: CatalogOpt = None,
    namespace: NamespaceOpt = None,
) -> None:
    """Download a file to a local file (or stdout)."""
    with _opened(url, store, catalog, namespace) as files:
        reader = files.open(key)
        out = output.open("wb") if output else sys.stdout.buffer
        try:
            with _progress() as progress:
                task = progress.add_task(
                    f"get {key}", total=reader.info.size, visible=reader.info.size >= PROGRESS_FROM
                )
                for piece in reader:
                    out.write(piece)
                    progress.advance(task, len(piece))
        finally:
            if output:
                out.close()
            else:
                out.flush()


@app.command("rm")
def rm(
    url: UrlArg,
    store: StoreArg,
    keys: Annotated[list[str], typer.Argument(help="the keys to delete")],
    catalog: CatalogOpt = None,
    namespace: NamespaceOpt = None,
) -> None:
    """Delete files."""
    with _opened(url, store, catalog, namespace) as files:
        for key in keys:
            files.delete(key)
            typer.echo(f"deleted {key}")


@app.command("cp")
def cp(
    url: UrlArg,
    store: StoreArg,
    src: Annotated[str, typer.Argument(help="the source key")],
    dst: Annotated[str, typer.Argument(help="the new key")],
    catalog: CatalogOpt = None,
    namespace: NamespaceOpt = None,
) -> None:
    """Copy a file (no bytes move: the copy shares the blob)."""
    with _opened(url, store, catalog, namespace) as files:
        info = files.copy(src, dst)
        typer.echo(f"{src} -> {info.key}  {info.size} bytes")


@app.command("gc")
def gc(
    url: UrlArg,
    store: StoreArg,
    older_than: Annotated[
        float, typer.Option(help="seconds: only blobs older than this are removed")
    ] = 3600.0,
    catalog: CatalogOpt = None,
    namespace: NamespaceOpt = None,
) -> None:
    """Remove unreferenced blobs and expired upload grants."""
    with _opened(url, store, catalog, namespace) as files:
        report = files.gc(older_than=older_than)
        typer.echo(f"removed {len(report.blobs)} blob(s), {len(report.uploads)} upload(s)")


@app.command("fsck")
def fsck(
    url: UrlArg, store: StoreArg, catalog: CatalogOpt = None, namespace: NamespaceOpt = None
) -> None:
    """Check every file's bytes against its size and SHA-256; exit 1 on damage."""
    with _opened(url, store, catalog, namespace) as files:
        report = files.fsck()
    for p in report.problems:
        typer.echo(f"{p.problem}  {p.key}  {p.detail}")
    typer.echo(
        f"checked {report.checked} file(s): {len(report.problems)} damaged, "
        f"{len(report.orphans)} orphaned blob(s), "
        f"{len(report.expired_uploads)} expired upload(s)"
    )
    if report.problems:
        raise typer.Exit(1)
