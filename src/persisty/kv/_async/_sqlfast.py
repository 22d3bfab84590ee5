"""The hot paths of a key/value namespace on SQL, each one statement on a pooled connection.

Built on the SQL store's own compiled statements and row codec (its ``schema``, ``_query``,
``_execute``, ``_decode``), so what they read and write is exactly what the store reads and
writes; only the number of round trips differs:

- ``get``/``has``: the store's point read of ``(ns, key)``, without building a key text and
  parsing it back (the expiry checked on the decoded pair, as the store's ``read`` does);
- ``len``: the count item's ``n`` and the live pairs with an expiry in one query;
- ``set`` of a pair without expiry (PostgreSQL): the pair's upsert (over an absent pair or
  one without expiry) and, when it was inserted, the count item's ``n + 1``, in one
  statement (data-modifying ``WITH``), atomic on its own; ``False`` (nothing written) when
  the pair there has an expiry (the counted commit decides then);
- ``insert_all``: a time series' fresh points in one ``executemany`` in one transaction.

The sync twin ``persisty/kv/_sync/_sqlfast.py`` is generated from this file by
``scripts/generate_sync.py``; edit this file, never the twin.
"""

from __future__ import annotations

from typing import Any

from persisty.errors import Conflict
from persisty.kv._models import KVPair


class AsyncSqlPairs:
    """The one-statement paths of one namespace's pairs (``raw``: the SQL store of the
    pairs, ``counts``: the SQL store of the count items)."""

    def __init__(self, ns: str, raw: Any, counts: Any) -> None:
        self.ns = ns
        self.raw: Any = raw
        self.counts: Any = counts
        s, c = raw.schema, counts.schema
        d = s.dialect
        q, ph = d.quote, d.ph
        exp = s.by_name["expires"].quoted
        self.sql_get = s.sql_get
        # (names are the model's, quoted by the dialect; every value is a parameter)
        self.sql_len = (
            f"SELECT (SELECT {q('n')} FROM {c.quoted} WHERE {c.key_where}), "  # noqa: S608
            f"(SELECT count(*) FROM {s.quoted} WHERE {q('ns')} = {ph} "
            f"AND {exp} IS NOT NULL AND {exp} > {ph})"
        )
        self.sql_put: str | None = None
        if d.name == "postgresql":
            # the pair's upsert, over a pair without expiry only (the count is unchanged
            # then), and the count item's ``n + 1`` (its document set by the engine) when
            # the pair was inserted (``xmax = 0``)
            doc = d.doc_set(q("_doc"), ["n"]).replace(
                "CAST(%s AS TEXT)", f"CAST({q('n')} + 1 AS TEXT)"
            )
            self.sql_put = (
                f"WITH put AS ({s.sql_upsert} WHERE {s.quoted}.{exp} IS NULL "  # noqa: S608
                "RETURNING (xmax = 0) AS fresh), "
                f"counted AS (UPDATE {c.quoted} SET {q('n')} = {q('n')} + 1, "
                f"{q('_etag')} = '', {q('_doc')} = {doc} "
                f"WHERE {c.key_where} AND EXISTS (SELECT 1 FROM put WHERE fresh)) "
                "SELECT count(*) FROM put"
            )

    async def read(self, key: str) -> KVPair | None:
        """The live pair of the stored key ``key`` (``"/" + key``), else ``None``."""
        raw = self.raw
        rows = await raw._query(self.sql_get, (self.ns, key))
        if not rows:
            return None
        pair: KVPair = raw._decode(rows[0][0])
        if pair.expires is not None and pair.expires <= raw.clock():
            return None
        return pair

    async def length(self) -> int | None:
        """The pairs without expiry plus the live ones with an expiry; ``None`` when the
        count item is not there yet."""
        raw = self.raw
        now = raw.schema.param("expires", raw.clock())
        rows = await raw._query(self.sql_len, (self.ns, self.ns, now))
        if not rows or rows[0][0] is None:
            return None
        return int(rows[0][0]) + int(rows[0][1])

    async def put(self, item: Any) -> bool:
        """Store the stored form ``item`` (no expiry) over an absent pair or one without
        expiry, counted, in one statement: ``False`` (nothing written) where the engine has
        no such statement or the pair there has an expiry."""
        if self.sql_put is None:
            return False
        params = (*self.raw.schema.insert_row(item), self.ns)
        rows = await self.raw._query(self.sql_put, params)
        return bool(rows[0][0])


async def insert_all(raw: Any, items: list[Any]) -> bool:
    """Insert the stored forms ``items`` (valid, built by the service, distinct keys) into
    the SQL store ``raw`` in one transaction, one ``executemany`` of the store's compiled
    ``INSERT``, with empty etags (a read computes them, as after a patch without a read):
    ``False`` (nothing written) when a key was taken, or where ``raw`` is no SQL store (the
    caller's ``edit_batch`` then decides)."""
    schema = getattr(raw, "schema", None)
    if schema is None or not hasattr(raw, "executor"):
        return False
    executor = raw.executor
    try:
        async with raw._conn() as conn:
            await executor.begin(conn)
            try:
                await executor.run_many(
                    conn, schema.sql_insert, schema.insert_rows(items, tagged=False), schema
                )
                await raw._log_created(conn, items)
            except BaseException:
                await executor.rollback(conn, quiet=True)
                raise
            await executor.commit(conn)
    except Conflict:
        return False
    return True
