"""The file backends the HTTP file tests run on: memory, chunks on SQLite and PostgreSQL,
a directory and S3 on moto_server (``source scripts/services``)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from tests.conftest import POSTGRES_URL
from tests.files._engines import s3_url

import persisty.files.aio
from persisty.files import AsyncFileStore

ROOT = Path(tempfile.mkdtemp(prefix="persisty-fhttp-"))
BACKENDS = ["memory", "sqlite", "postgres", "dir", "s3"]
NAMESPACE = "fhttp"


def open_files(backend: str, name: str, **options: Any) -> AsyncFileStore:
    """A fresh async file store named ``name`` on ``backend``."""
    sqlite = f"sqlite:///{ROOT / 'catalog.db'}"
    if backend == "memory":
        return persisty.files.aio.connect("memory://", name=name, **options)
    if backend == "sqlite":
        return persisty.files.aio.connect(
            f"sqlite:///{ROOT / 'chunks.db'}",
            name=name,
            namespace=NAMESPACE,
            chunk_size=16 * 1024,
            **options,
        )
    if backend == "postgres":
        return persisty.files.aio.connect(
            POSTGRES_URL, name=name, namespace=NAMESPACE, chunk_size=16 * 1024, **options
        )
    if backend == "dir":
        return persisty.files.aio.connect(
            f"dir://{ROOT / 'dir'}", name=name, catalog=sqlite, namespace=NAMESPACE, **options
        )
    if backend == "s3":
        return persisty.files.aio.connect(
            s3_url(), name=name, catalog=sqlite, namespace=NAMESPACE, **options
        )
    raise ValueError(backend)
