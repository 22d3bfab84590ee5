"""persisty's SQL backend vs the raw drivers and SQLAlchemy 2 ORM, on the standard workload.

Two groups in one run, each with its own baseline:

- SQLite (a file in a temporary directory, WAL): raw ``sqlite3`` with prepared statements
  (the baseline), persisty ``sqlite:///…``, SQLAlchemy 2 ORM (typical ``Session`` code).
- PostgreSQL (127.0.0.1): raw psycopg 3 (the baseline), persisty ``postgresql://…``,
  SQLAlchemy 2 ORM over psycopg.

    .venv/bin/python benchmarks/bench_sql.py [--n 50000] [--only sqlite|postgresql]
        [--repeat 3] [--runs 3] [--without orm tuples] [--interleaved]
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, Index, String, create_engine, event
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

sys.path.insert(0, str(Path(__file__).parent))

from workload import (
    BenchItem,
    Contender,
    PersistyContender,
    Result,
    median_table,
    run_interleaved,
    run_one,
    table,
)

import persisty
from persisty.backends.sql import SqlDatabase

POSTGRES_URL = os.environ.get("PERSISTY_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
COLUMNS = ("id", "title", "owner", "score", "created_at", "tags")


# ---- SQLite -------------------------------------------------------------------------------------


def _item(row: Sequence[Any]) -> BenchItem:
    """Hand-written row mapping: what code on a raw driver does to get typed items."""
    created = row[4] if isinstance(row[4], datetime) else datetime.fromisoformat(row[4])
    tags = row[5] if isinstance(row[5], list) else json.loads(row[5])
    return BenchItem(
        id=row[0], title=row[1], owner=row[2], score=row[3], created_at=created, tags=tags
    )


class RawSqlite(Contender):
    """sqlite3 by hand: WAL, synchronous=NORMAL, statements cached by sqlite3. With
    ``objects`` the rows are mapped to ``BenchItem`` by hand (the baseline); without, reads
    return the driver's tuples (the floor: no typed items at all)."""

    def __init__(self, path: str, objects: bool = True) -> None:
        self.path = path
        self.objects = objects
        self.baseline = objects
        self.name = "raw sqlite3" if objects else "raw sqlite3 (tuples)"

    def setup(self) -> None:
        import sqlite3

        self.conn = sqlite3.connect(self.path, isolation_level=None)
        c = self.conn
        c.execute("PRAGMA journal_mode = WAL")
        c.execute("PRAGMA synchronous = NORMAL")
        c.execute("DROP TABLE IF EXISTS raw_item")
        c.execute(
            "CREATE TABLE raw_item (id TEXT PRIMARY KEY, title TEXT, owner TEXT, "
            "score INTEGER, created_at TEXT, tags TEXT)"
        )
        c.execute("CREATE INDEX raw_item_owner_score ON raw_item (owner, score)")

    def teardown(self) -> None:
        self.conn.execute("DROP TABLE raw_item")
        self.conn.close()

    @staticmethod
    def _row(r: dict[str, Any]) -> tuple[Any, ...]:
        return (
            r["id"],
            r["title"],
            r["owner"],
            r["score"],
            r["created_at"].isoformat(" "),
            json.dumps(r["tags"]),
        )

    def bulk_create(self, rows: Sequence[dict[str, Any]]) -> None:
        c = self.conn
        c.execute("BEGIN")
        c.executemany(
            "INSERT INTO raw_item VALUES (?, ?, ?, ?, ?, ?)", [self._row(r) for r in rows]
        )
        c.execute("COMMIT")

    def read(self, key: str) -> Any:
        row = self.conn.execute("SELECT * FROM raw_item WHERE id = ?", (key,)).fetchone()
        return _item(row) if self.objects and row is not None else row

    def read_batch(self, keys: Sequence[str]) -> list[Any]:
        marks = ", ".join("?" * len(keys))
        rows = self.conn.execute(
            f"SELECT * FROM raw_item WHERE id IN ({marks})", tuple(keys)
        ).fetchall()
        return [_item(r) for r in rows] if self.objects else rows

    def update(self, row: dict[str, Any]) -> None:
        r = self._row(row)
        self.conn.execute(
            "UPDATE raw_item SET title = ?, owner = ?, score = ?, created_at = ?, "
            "tags = ? WHERE id = ?",
            (*r[1:], r[0]),
        )

    def patch(self, change: dict[str, Any]) -> None:
        # autocommit: the statement is committed on its own
        self.conn.execute(
            "UPDATE raw_item SET score = ?, title = ? WHERE id = ?",
            (change["score"], change["title"], change["id"]),
        )

    def search(self, owner: str) -> list[Any]:
        rows = self.conn.execute(
            "SELECT * FROM raw_item WHERE owner = ? ORDER BY score DESC, id LIMIT 20", (owner,)
        ).fetchall()
        return [_item(r) for r in rows] if self.objects else rows

    def count(self, owner: str) -> int:
        return int(
            self.conn.execute("SELECT count(*) FROM raw_item WHERE owner = ?", (owner,)).fetchone()[
                0
            ]
        )

    def delete(self, key: str) -> None:
        self.conn.execute("DELETE FROM raw_item WHERE id = ?", (key,))


# ---- PostgreSQL ---------------------------------------------------------------------------------


class RawPsycopg(Contender):
    """psycopg 3 by hand: one autocommit connection, statements prepared by psycopg; rows
    mapped to ``BenchItem`` by hand (``objects``, the baseline) or left as tuples."""

    def __init__(self, objects: bool = True) -> None:
        self.objects = objects
        self.baseline = objects
        self.name = "raw psycopg" if objects else "raw psycopg (tuples)"

    def setup(self) -> None:
        import psycopg

        self.conn = psycopg.connect(POSTGRES_URL, autocommit=True)
        c = self.conn
        c.execute("DROP TABLE IF EXISTS raw_item")
        c.execute(
            'CREATE TABLE raw_item (id TEXT COLLATE "C" PRIMARY KEY, title TEXT, '
            'owner TEXT COLLATE "C", score BIGINT, created_at TIMESTAMPTZ, tags JSONB)'
        )
        c.execute("CREATE INDEX raw_item_owner_score ON raw_item (owner, score)")

    def teardown(self) -> None:
        self.conn.execute("DROP TABLE raw_item")
        self.conn.close()

    @staticmethod
    def _row(r: dict[str, Any]) -> tuple[Any, ...]:
        return (r["id"], r["title"], r["owner"], r["score"], r["created_at"], json.dumps(r["tags"]))

    def bulk_create(self, rows: Sequence[dict[str, Any]]) -> None:
        with self.conn.transaction(), self.conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO raw_item VALUES (%s, %s, %s, %s, %s, %s::jsonb)",
                [self._row(r) for r in rows],
            )

    def read(self, key: str) -> Any:
        row = self.conn.execute("SELECT * FROM raw_item WHERE id = %s", (key,)).fetchone()
        return _item(row) if self.objects and row is not None else row

    def read_batch(self, keys: Sequence[str]) -> list[Any]:
        rows = self.conn.execute(
            "SELECT * FROM raw_item WHERE id = ANY(%s)", (list(keys),)
        ).fetchall()
        return [_item(r) for r in rows] if self.objects else rows

    def update(self, row: dict[str, Any]) -> None:
        r = self._row(row)
        self.conn.execute(
            "UPDATE raw_item SET title = %s, owner = %s, score = %s, "
            "created_at = %s, tags = %s::jsonb WHERE id = %s",
            (*r[1:], r[0]),
        )

    def patch(self, change: dict[str, Any]) -> None:
        # autocommit: the statement is committed on its own
        self.conn.execute(
            "UPDATE raw_item SET score = %s, title = %s WHERE id = %s",
            (change["score"], change["title"], change["id"]),
        )

    def search(self, owner: str) -> list[Any]:
        rows = self.conn.execute(
            "SELECT * FROM raw_item WHERE owner = %s ORDER BY score DESC, id LIMIT 20", (owner,)
        ).fetchall()
        return [_item(r) for r in rows] if self.objects else rows

    def count(self, owner: str) -> int:
        row = self.conn.execute(
            "SELECT count(*) FROM raw_item WHERE owner = %s", (owner,)
        ).fetchone()
        return int(row[0]) if row else 0

    def delete(self, key: str) -> None:
        self.conn.execute("DELETE FROM raw_item WHERE id = %s", (key,))


# ---- SQLAlchemy 2 ORM ---------------------------------------------------------------------------


class OrmBase(DeclarativeBase):
    pass


class OrmItem(OrmBase):
    __tablename__ = "orm_item"
    __table_args__ = (Index("orm_item_owner_score", "owner", "score"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    title: Mapped[str] = mapped_column(String(100))
    owner: Mapped[str] = mapped_column(String(100))
    score: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    tags: Mapped[list[str]] = mapped_column(JSON)


class OrmContender(Contender):
    """Typical SQLAlchemy 2 ORM code: a mapped class, one ``Session`` per operation."""

    def __init__(self, name: str, url: str) -> None:
        self.name = name
        self.url = url

    def setup(self) -> None:
        self.model = OrmItem
        self.engine = create_engine(self.url)
        if self.url.startswith("sqlite"):

            @event.listens_for(self.engine, "connect")
            def _wal(dbapi_conn: Any, _record: Any) -> None:
                dbapi_conn.execute("PRAGMA journal_mode = WAL")
                dbapi_conn.execute("PRAGMA synchronous = NORMAL")

        OrmBase.metadata.drop_all(self.engine)
        OrmBase.metadata.create_all(self.engine)
        self.base = OrmBase

    def teardown(self) -> None:
        self.base.metadata.drop_all(self.engine)
        self.engine.dispose()

    def bulk_create(self, rows: Sequence[dict[str, Any]]) -> None:
        from sqlalchemy.orm import Session

        with Session(self.engine) as s:
            s.add_all([self.model(**r) for r in rows])
            s.commit()

    def read(self, key: str) -> Any:
        from sqlalchemy.orm import Session

        with Session(self.engine) as s:
            return s.get(self.model, key)

    def read_batch(self, keys: Sequence[str]) -> list[Any]:
        from sqlalchemy import select
        from sqlalchemy.orm import Session

        with Session(self.engine) as s:
            return list(s.scalars(select(self.model).where(self.model.id.in_(keys))))

    def update(self, row: dict[str, Any]) -> None:
        from sqlalchemy.orm import Session

        with Session(self.engine) as s:
            obj = s.get(self.model, row["id"])
            for k, v in row.items():
                setattr(obj, k, v)
            s.commit()

    def patch(self, change: dict[str, Any]) -> None:
        from sqlalchemy.orm import Session

        with Session(self.engine) as s:
            obj = s.get(self.model, change["id"])
            obj.score = change["score"]
            obj.title = change["title"]
            s.commit()

    def search(self, owner: str) -> list[Any]:
        from sqlalchemy import select
        from sqlalchemy.orm import Session

        m = self.model
        with Session(self.engine) as s:
            return list(
                s.scalars(
                    select(m).where(m.owner == owner).order_by(m.score.desc(), m.id).limit(20)
                )
            )

    def count(self, owner: str) -> int:
        from sqlalchemy import func, select
        from sqlalchemy.orm import Session

        m = self.model
        with Session(self.engine) as s:
            return int(s.scalar(select(func.count()).select_from(m).where(m.owner == owner)) or 0)

    def delete(self, key: str) -> None:
        from sqlalchemy.orm import Session

        with Session(self.engine) as s:
            obj = s.get(self.model, key)
            s.delete(obj)
            s.commit()


def persisty_contender(name: str, url: str) -> PersistyContender:
    """persisty on ``url``, its table dropped afterwards."""
    holder: dict[str, SqlDatabase] = {}

    def open_store() -> Any:
        db = persisty.connect(url, namespace="bench")
        assert isinstance(db, SqlDatabase)
        holder["db"] = db
        store = db.store(BenchItem)
        db.drop_tables()
        return store

    def close() -> None:
        holder["db"].drop_tables()
        holder["db"].close()

    return PersistyContender(name, open_store, close)


def best_of(contenders: Sequence[Contender], n: int, seed: int, repeat: int) -> list[Result]:
    """Run every contender ``repeat`` times, interleaved (so background load hits them all
    alike), and keep each phase's best; print and return the table."""
    best: list[Result] = [Result(c.name, baseline=c.baseline) for c in contenders]
    for r in range(repeat):
        for c, b in zip(contenders, best, strict=True):
            print(f"round {r + 1}/{repeat}: {c.name} (n={n:,}) …", flush=True)
            got = run_one(c, n, seed)
            for phase, ops in got.ops.items():
                b.ops[phase] = max(b.ops.get(phase, 0.0), ops)
    print()
    print(table(best))
    return best


def runs_of(contenders: Sequence[Contender], args: Any) -> None:
    """``--runs`` independent runs (each the best of ``--repeat`` rounds); with several, the
    median table with each ratio's spread."""
    every = []
    for i in range(args.runs):
        if args.runs > 1:
            print(f"-- run {i + 1}/{args.runs}")
        if args.interleaved:
            got = run_interleaved(contenders, args.n, args.seed, args.repeat)
            print()
            print(table(got))
            every.append(got)
        else:
            every.append(best_of(contenders, args.n, args.seed, args.repeat))
    if args.runs > 1:
        print()
        print(median_table(every))


def main() -> None:
    import argparse

    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=50_000)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--only", choices=["sqlite", "postgresql"])
    p.add_argument("--repeat", type=int, default=3, help="rounds; each phase keeps its best")
    p.add_argument(
        "--runs",
        type=int,
        default=1,
        help="independent runs; with several, a median table with the spread",
    )
    p.add_argument(
        "--interleaved",
        action="store_true",
        help="contenders take turns slice by slice inside every phase (for a "
        "loaded machine); --repeat rounds of the repeatable phases",
    )
    p.add_argument(
        "--without",
        nargs="*",
        choices=["orm", "tuples"],
        default=[],
        help="leave out the SQLAlchemy ORM and/or the raw-tuples contenders",
    )
    args = p.parse_args()
    if args.only in (None, "sqlite"):
        with tempfile.TemporaryDirectory() as tmp:
            print("== SQLite (file, WAL)")
            lite: list[Contender] = [RawSqlite(f"{tmp}/raw.db")]
            if "tuples" not in args.without:
                lite.append(RawSqlite(f"{tmp}/raw_t.db", objects=False))
            lite.append(persisty_contender("persisty sqlite", f"sqlite:///{tmp}/persisty.db"))
            if "orm" not in args.without:
                lite.append(OrmContender("SQLAlchemy ORM", f"sqlite:///{tmp}/orm.db"))
            runs_of(lite, args)
    if args.only in (None, "postgresql"):
        print("\n== PostgreSQL")
        pg: list[Contender] = [RawPsycopg()]
        if "tuples" not in args.without:
            pg.append(RawPsycopg(objects=False))
        pg.append(persisty_contender("persisty postgresql", POSTGRES_URL))
        if "orm" not in args.without:
            pg.append(
                OrmContender(
                    "SQLAlchemy ORM", POSTGRES_URL.replace("postgresql://", "postgresql+psycopg://")
                )
            )
        runs_of(pg, args)


if __name__ == "__main__":
    main()
