"""Reading an rstore database (SQLite, PostgreSQL or Redis) into persisty.kv.

rstore keeps every value, and every event's op, as a pickle; unpickling runs whatever code
the data names, so :func:`import_rstore` refuses to unpickle unless told to trust the data.
rstore's layout (one namespace ``ns`` is stored as the prefix ``__<ns with . as __>__``):

* SQLite: tables ``_kv(_key, _value)``, ``_ts(_key, _timestamp, _value)`` and
  ``_es(_key, _timestamp, _item, _op, _value)``; PostgreSQL: the same tables in the schema
  ``__<ns>``;
* Redis: strings ``kv<prefix><key>``, sorted sets ``ts<prefix><key>`` (members: the
  10-digit timestamp then the value, scored by the timestamp) and ``es<prefix><key>``
  (members: row ids, scored by the timestamp; each row a hash of item, op and value).
"""

from __future__ import annotations

import os
import pickle
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from persisty.errors import Unavailable, ValidationError


@dataclass
class RstoreData:
    """What was read: pairs, points per series, events per sequence (in time order)."""

    kv: list[tuple[str, bytes]] = field(default_factory=list)
    ts: dict[str, list[tuple[int, bytes]]] = field(default_factory=dict)
    es: dict[str, list[tuple[int, str, bytes, bytes]]] = field(default_factory=dict)

    @property
    def size(self) -> int:
        """How many pairs, points and event rows."""
        return len(self.kv) + sum(map(len, self.ts.values())) + sum(map(len, self.es.values()))


def rstore_prefix(namespace: str) -> str:
    """The prefix rstore puts before each key of ``namespace``."""
    return "__" + namespace.replace(".", "__") + "__"


def _strip(prefix: str, key: str) -> str | None:
    return key[len(prefix) :] if key.startswith(prefix) else None


def read_sqlite(path: str, namespace: str) -> RstoreData:
    """The namespace's data from an rstore SQLite file (opened read-only)."""
    if not os.path.isfile(path):
        raise Unavailable(f"no rstore file {path!r}")
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return _read_sql(lambda sql: conn.execute(sql).fetchall(), namespace)
    finally:
        conn.close()


def read_postgres(dsn: str, namespace: str) -> RstoreData:
    """The namespace's data from an rstore PostgreSQL database (its schema ``__<ns>``)."""
    import psycopg
    from psycopg import sql

    schema = rstore_prefix(namespace)[:-2]
    with psycopg.connect(dsn) as conn:
        found = conn.execute(
            "SELECT 1 FROM information_schema.schemata WHERE schema_name = %s", (schema,)
        ).fetchall()
        if not found:
            raise Unavailable(f"no rstore namespace {namespace!r} (schema {schema!r})")

        def fetch(statement: str) -> list[Any]:
            # the table names are rstore's constants, the schema an identifier
            table = statement.split(" FROM ")[1].split()[0]
            text = statement.replace(f" FROM {table}", " FROM {}.{}")
            query = sql.SQL(text).format(
                sql.Identifier(schema),  # type: ignore[arg-type,unused-ignore]
                sql.Identifier(table),
            )
            return [
                tuple(bytes(c) if isinstance(c, memoryview) else c for c in row)
                for row in conn.execute(query).fetchall()
            ]

        return _read_sql(fetch, namespace)


def _read_sql(fetch: Callable[[str], list[Any]], namespace: str) -> RstoreData:
    prefix = rstore_prefix(namespace)
    data = RstoreData()
    for key, value in fetch("SELECT _key, _value FROM _kv ORDER BY _key"):
        k = _strip(prefix, key)
        if k is not None:
            data.kv.append((k, bytes(value)))
    for key, t, value in fetch(
        "SELECT _key, _timestamp, _value FROM _ts ORDER BY _key, _timestamp"
    ):
        k = _strip(prefix, key)
        if k is not None:
            data.ts.setdefault(k, []).append((int(t), bytes(value)))
    for key, t, item, op, value in fetch(
        "SELECT _key, _timestamp, _item, _op, _value FROM _es ORDER BY _key, _timestamp"
    ):
        k = _strip(prefix, key)
        if k is not None:
            data.es.setdefault(k, []).append((int(t), item, bytes(op), bytes(value)))
    return data


def read_redis(url: str, namespace: str) -> RstoreData:
    """The namespace's data from an rstore Redis server."""
    import redis

    client: Any = redis.Redis.from_url(url)
    prefix = rstore_prefix(namespace)
    data = RstoreData()
    try:
        for kind in ("kv", "ts", "es"):
            for name in sorted(client.scan_iter(match=f"{kind}{prefix}*".encode())):
                key = name.decode()[2 + len(prefix) :]
                if kind == "kv":
                    value = client.get(name)
                    if value is not None:
                        data.kv.append((key, value))
                elif kind == "ts":
                    for member, score in client.zrange(name, 0, -1, withscores=True):
                        t = int(score)
                        data.ts.setdefault(key, []).append((t, member[len(f"{t:010}") :]))
                else:
                    for row_id, score in client.zrange(name, 0, -1, withscores=True):
                        item, op, value = client.hmget(row_id, ["item", "op", "value"])
                        data.es.setdefault(key, []).append((int(score), item.decode(), op, value))
    except redis.exceptions.ConnectionError as e:
        raise Unavailable(f"{url}: {e}") from e
    finally:
        client.close()
    return data


def read_rstore(dsn: str, namespace: str = "default") -> RstoreData:
    """The data of one rstore namespace at ``dsn`` (``sqlite://file``, ``postgresql://…``,
    ``redis://…``), values still pickled."""
    if dsn.startswith("sqlite://"):
        path = dsn[len("sqlite://") :]
        return read_sqlite(path[1:] if path.startswith("//") else path, namespace)
    if dsn.startswith(("postgresql://", "postgres://")):
        return read_postgres(dsn, namespace)
    if dsn.startswith(("redis://", "rediss://", "unix://")):
        return read_redis(dsn, namespace)
    raise ValidationError(
        f"not an rstore DSN: {dsn!r} (sqlite://, postgresql://, redis://)", field="dsn"
    )


def _unpickle(blob: bytes) -> Any:
    return pickle.loads(blob)  # noqa: S301


def import_rstore(
    dsn: str,
    url: str,
    *,
    namespace: str = "default",
    to_namespace: str | None = None,
    trust_pickle: bool = False,
    progress: Callable[[int], None] | None = None,
    total: Callable[[int], None] | None = None,
) -> dict[str, int]:
    """Copy one rstore namespace into persisty at ``url``: pairs with ``KeyValue``, series
    with ``TimeSeries`` (all points of a series at once), sequences with ``EventLog`` (one
    ``apply`` per rstore event, at its own timestamp). Returns counts per kind.

    rstore pickled its values; unpickling executes code named by the data, so it happens
    only with ``trust_pickle=True`` (``ValidationError`` otherwise).

    Example::

        import pickle, sqlite3
        from persisty.kv import KeyValue, import_rstore

        old = sqlite3.connect("old.store")  # an rstore file, one pair in namespace "default"
        old.executescript(
            "CREATE TABLE _kv(_key, _value); CREATE TABLE _ts(_key, _timestamp, _value);"
            "CREATE TABLE _es(_key, _timestamp, _item, _op, _value)"
        )
        old.execute("INSERT INTO _kv VALUES (?, ?)", ("__default__hi", pickle.dumps("hello")))
        old.commit()
        import_rstore("sqlite://old.store", "sqlite:///new.db", trust_pickle=True)
        assert KeyValue("sqlite:///new.db", namespace="default")["hi"] == "hello"
    """
    if not trust_pickle:
        raise ValidationError(
            "rstore stored every value as a pickle, and unpickling runs "
            "code named by the data: import only data you trust, with "
            "--trust-pickle",
            field="trust_pickle",
        )
    from persisty.kv import EventLog, KeyValue, TimeSeries
    from persisty.kv._open import kv_connect
    from persisty.kv._ops import op_name

    data = read_rstore(dsn, namespace)
    if total is not None:
        total(data.size)
    db, owned = kv_connect(url)
    target = namespace if to_namespace is None else to_namespace
    step = progress or (lambda n: None)
    try:
        kv = KeyValue(db, target)
        for start in range(0, len(data.kv), 500):
            chunk = data.kv[start : start + 500]
            kv.set_many({k: _unpickle(v) for k, v in chunk})
            step(len(chunk))
        ts = TimeSeries(db, target)
        for key, points in data.ts.items():
            ts.extend(key, *[(t, _unpickle(v)) for t, v in points])
            step(len(points))
        log = EventLog(db, target)
        for key, rows in data.es.items():
            for t, group in _by_time(rows):
                changes = {
                    item: (op_name(_unpickle(op), item), _unpickle(value))
                    for item, op, value in group
                }
                log.apply(key, changes, t=t)
                step(len(group))
    finally:
        if owned:
            db.close()
    return {
        "pairs": len(data.kv),
        "points": sum(map(len, data.ts.values())),
        "events": sum(len(list(_by_time(r))) for r in data.es.values()),
    }


def _by_time(
    rows: list[tuple[int, str, bytes, bytes]],
) -> Iterator[tuple[int, list[tuple[str, bytes, bytes]]]]:
    group: list[tuple[str, bytes, bytes]] = []
    current: int | None = None
    for t, item, op, value in rows:
        if current is not None and t != current:
            yield current, group
            group = []
        current = t
        group.append((item, op, value))
    if current is not None:
        yield current, group
