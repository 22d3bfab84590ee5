"""Opening SQL stores (issue 11, items 6 and 10): what exists is looked up before anything
is created, so a refused open creates nothing and async MariaDB prints no server notes."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from tests.conftest import MYSQL_URL, POSTGRES_URL

import persisty
from persisty.errors import Unavailable
from persisty.model import Index, stored


@stored
class Old:
    id: str
    a: int = 0


def test_a_refused_open_creates_no_index(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'o.db'}"

    @stored(name="old", indexes=[Index("b")])
    class New:
        id: str
        a: int = 0
        b: str = ""

    before = persisty.connect(url)
    before.store(Old).create(Old(id="1"))
    before.close()
    db = persisty.connect(url)  # a later process, with the new model
    with pytest.raises(Unavailable, match="lacks column"):
        db.store(New).count()
    import sqlite3

    with sqlite3.connect(tmp_path / "o.db") as conn:
        indexes = [
            r[0]
            for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'old'"
            )
        ]
    assert not any("_b" in name for name in indexes), indexes
    db.close()


_OPEN_TWICE = """
import asyncio, sys
import persisty.aio
from persisty.testing.models import Item, Numbered

async def main():
    for _ in range(2):
        db = persisty.aio.connect(sys.argv[1], namespace=sys.argv[2])
        await db.store(Item).count()
        await db.store(Numbered).count()
        await db.close()
    db = persisty.aio.connect(sys.argv[1], namespace=sys.argv[2])
    db.store(Item)
    db.store(Numbered)
    await db.drop()
    await db.close()

asyncio.run(main())
"""


@pytest.mark.parametrize("url", [MYSQL_URL, POSTGRES_URL])
def test_async_open_prints_no_server_notes(url: str) -> None:
    run = subprocess.run(
        [sys.executable, "-c", _OPEN_TWICE, url, "n" + uuid.uuid4().hex[:8]],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    out = run.stdout + run.stderr
    assert "already exists" not in out and "Duplicate" not in out, out
    assert out.strip() == "", out


@pytest.mark.parametrize("clustered", [True, False])
def test_a_clustered_model_is_a_without_rowid_table_on_sqlite(
    tmp_path: Path, clustered: bool
) -> None:
    import sqlite3

    @stored(key=("series", "t"), name="pt", clustered=clustered)
    class Pt:
        series: str
        t: int
        v: str = ""

    url = f"sqlite:///{tmp_path / 'c.db'}"
    db = persisty.connect(url)
    store = db.store(Pt)
    for t in (3, 1, 2):
        store.create(Pt(series="s", t=t, v=str(t)))
    assert [p.t for p in store.search(order=["t"]).items] == [1, 2, 3]
    assert store.read(store.key_of(Pt(series="s", t=2))) == Pt(series="s", t=2, v="2")
    db.close()
    conn = sqlite3.connect(tmp_path / "c.db")
    (sql,) = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'pt'").fetchone()
    conn.close()
    assert ("WITHOUT ROWID" in sql) is clustered
