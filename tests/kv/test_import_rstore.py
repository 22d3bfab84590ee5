"""`persisty import-rstore`: rstore databases (SQLite, PostgreSQL, Redis) written in
rstore's documented layout, read into persisty.kv; pickles only with --trust-pickle."""

from __future__ import annotations

import operator
import pickle
import sqlite3
import uuid
from pathlib import Path

import psycopg
import redis
from tests.conftest import POSTGRES_URL, REDIS_URL
from typer.testing import CliRunner

from persisty.cli import cli
from persisty.kv import EventLog, KeyValue, TimeSeries

KV = {"plain": "Some str", "num": 42, "nested": {"a": [1, 2]}, "a__b": None}
TS = [(100, "0"), (110, "1"), (1_700_000_000_123, 2.5)]
ES = [
    (1000, "n", operator.setitem, 1),
    (1000, "s", operator.setitem, "x"),
    (2000, "n", operator.add, 5),
    (3000, "s", operator.delitem, None),
]


def _p(value: object) -> bytes:
    return pickle.dumps(value, protocol=4)


def _sql_rows(
    prefix: str,
) -> tuple[
    list[tuple[str, bytes]], list[tuple[str, int, bytes]], list[tuple[str, int, str, bytes, bytes]]
]:
    kv = [(prefix + k, _p(v)) for k, v in KV.items()] + [("__other__x", _p("other ns"))]
    ts = [(prefix + "temp", t, _p(v)) for t, v in TS]
    es = [(prefix + "doc", t, item, _p(op), _p(v)) for t, item, op, v in ES]
    return kv, ts, es


def _check(url: str, namespace: str) -> None:
    kv = KeyValue(url, namespace)
    assert dict(kv.items()) == KV
    assert TimeSeries(kv.db, namespace).range("temp") == TS
    log = EventLog(kv.db, namespace)
    assert log.current("doc") == {"n": 6}
    assert log.past("doc", 1500) == {"n": 1, "s": "x"}
    assert [t for t, _ in log.events("doc") or []] == [1000, 2000, 3000]
    assert log.events("doc", ops=operator.add) == [(2000, {"n": (operator.add, 5)})]


def test_import_sqlite(tmp_path: Path) -> None:
    path = tmp_path / "old.store"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE _kv (_key TEXT NOT NULL PRIMARY KEY, _value BLOB NOT NULL)")
    conn.execute(
        "CREATE TABLE _ts (_key TEXT NOT NULL, _timestamp BIGINT NOT NULL, "
        "_value BLOB NOT NULL, PRIMARY KEY (_key, _timestamp))"
    )
    conn.execute(
        "CREATE TABLE _es (_key TEXT NOT NULL, _timestamp BIGINT NOT NULL, "
        "_item TEXT NOT NULL, _op BLOB NOT NULL, _value BLOB NOT NULL, "
        "PRIMARY KEY (_key, _timestamp, _item, _op))"
    )
    kv, ts, es = _sql_rows("__default__")
    conn.executemany("INSERT INTO _kv VALUES (?, ?)", kv)
    conn.executemany("INSERT INTO _ts VALUES (?, ?, ?)", ts)
    conn.executemany("INSERT INTO _es VALUES (?, ?, ?, ?, ?)", es)
    conn.commit()
    conn.close()
    url = f"sqlite:///{tmp_path / 'new.db'}"
    runner = CliRunner()
    refused = runner.invoke(cli, ["import-rstore", f"sqlite://{path}", url])
    assert refused.exit_code == 1 and "--trust-pickle" in refused.output
    assert not (tmp_path / "new.db").exists()
    done = runner.invoke(cli, ["import-rstore", f"sqlite://{path}", url, "--trust-pickle"])
    assert done.exit_code == 0, done.output
    assert "imported 4 pair(s), 3 point(s), 3 event(s)" in done.output
    _check(url, "default")


def test_import_postgres(tmp_path: Path) -> None:
    ns = "imp" + uuid.uuid4().hex[:8]
    schema = f"__{ns}"
    with psycopg.connect(POSTGRES_URL) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
        try:
            conn.execute(f'SET search_path TO "{schema}"')
            conn.execute("CREATE TABLE _kv (_key TEXT NOT NULL PRIMARY KEY, _value BYTEA)")
            conn.execute(
                "CREATE TABLE _ts (_key TEXT, _timestamp BIGINT, _value BYTEA, "
                "PRIMARY KEY (_key, _timestamp))"
            )
            conn.execute(
                "CREATE TABLE _es (_key TEXT, _timestamp BIGINT, _item TEXT, "
                "_op BYTEA, _value BYTEA, PRIMARY KEY (_key, _timestamp, _item, _op))"
            )
            kv, ts, es = _sql_rows(schema + "__")
            with conn.cursor() as c:
                c.executemany("INSERT INTO _kv VALUES (%s, %s)", kv)
                c.executemany("INSERT INTO _ts VALUES (%s, %s, %s)", ts)
                c.executemany("INSERT INTO _es VALUES (%s, %s, %s, %s, %s)", es)
            conn.commit()
            url = f"sqlite:///{tmp_path / 'new.db'}"
            done = CliRunner().invoke(
                cli,
                [
                    "import-rstore",
                    POSTGRES_URL,
                    url,
                    "--namespace",
                    ns,
                    "--to-namespace",
                    "moved",
                    "--trust-pickle",
                ],
            )
            assert done.exit_code == 0, done.output
            _check(url, "moved")
        finally:
            conn.rollback()
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
            conn.commit()


def test_import_redis(tmp_path: Path) -> None:
    ns = "imp" + uuid.uuid4().hex[:8]
    prefix = f"__{ns}__"
    client = redis.Redis.from_url(REDIS_URL)
    names = []
    try:
        for k, v in KV.items():
            client.set("kv" + prefix + k, _p(v))
            names.append("kv" + prefix + k)
        for t, v in TS:
            client.zadd("ts" + prefix + "temp", {f"{t:010}".encode() + _p(v): t})
        names.append("ts" + prefix + "temp")
        for t, item, op, v in ES:
            row = str(uuid.uuid4())
            client.hset(row, mapping={"item": item, "op": _p(op), "value": _p(v)})
            client.zadd("es" + prefix + "doc", {row: t})
            names.append(row)
        names.append("es" + prefix + "doc")
        url = f"sqlite:///{tmp_path / 'new.db'}"
        done = CliRunner().invoke(
            cli, ["import-rstore", REDIS_URL, url, "--namespace", ns, "--trust-pickle"]
        )
        assert done.exit_code == 0, done.output
        _check(url, ns)
    finally:
        client.delete(*names)
        client.close()
