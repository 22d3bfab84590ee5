"""The transactional outbox of the SQL backend (async): a store whose every write also
writes its change to ``persisty_outbox`` in the same transaction, and the outbox that
hands those changes out until they are delivered. ``observed(store, outbox=True)`` uses
them (through ``persisty.store.AsyncOutboxSource``) for at-least-once delivery.

The sync twin ``_sync/outbox.py`` is generated from this file by
``scripts/generate_sync.py``; edit this file, never the twin.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import secrets
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from persisty.backends.sql._async.executor import AsyncSqlExecutor
from persisty.backends.sql._async.store import AsyncSqlStore
from persisty.backends.sql._async.tables import AsyncSqlTables
from persisty.errors import PersistyError
from persisty.model import StoreMeta
from persisty.query import Filter
from persisty.store import (
    AsyncStoreBase,
    Insert,
    Key,
    Replace,
    WriteOp,
    check_changes,
)

_COLLECTED: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar(
    "persisty_outbox_ids", default=None
)


class AsyncSqlOutbox:
    """The changes of one store's writes, kept in the ``persisty_outbox`` table until
    delivered: each row is written in the transaction of its write, leased to the writer
    for ``lease`` seconds, and deleted by :meth:`done`. A row whose lease ran out (its
    writer crashed before delivering) is taken over by :meth:`claim`, so every committed
    change is delivered at least once.

    Example::

        store, outbox = db.store(Note).with_outbox(lease=30)
        rows = await outbox.claim(100)
        for change_id, kind, key, old, new, at in rows:
            ...                               # deliver, then
        await outbox.done([row[0] for row in rows])
    """

    def __init__(
        self,
        executor: AsyncSqlExecutor,
        tables: AsyncSqlTables,
        store: str,
        meta: StoreMeta,
        lease: float,
    ) -> None:
        self.executor = executor
        self.tables = tables
        self.store = store
        self.meta = meta
        self.lease = float(lease)
        self.schema = tables.outbox

    @contextmanager
    def collecting(self) -> Iterator[list[str]]:
        """Collect the ids of the rows written in this block (this task or thread only)."""
        ids: list[str] = []
        token = _COLLECTED.set(ids)
        try:
            yield ids
        finally:
            _COLLECTED.reset(token)

    def _row(self, kind: str, key: Key, old: Any, new: Any, now: float) -> tuple[Any, ...]:
        # ids grow with time (nanoseconds, then 64 random bits), so rows are appended to the
        # table's B-tree and deleted from its end instead of landing all over it
        change_id = f"{time.time_ns():016x}{secrets.randbits(64):016x}"
        collected = _COLLECTED.get()
        if collected is not None:
            collected.append(change_id)
        m = self.meta
        doc = self.schema.doc
        return (
            change_id,
            self.store,
            kind,
            m.key_string(key),
            doc(None if old is None else m.encode(old)),
            doc(None if new is None else m.encode(new)),
            now,
            now + self.lease,
        )

    async def write(self, conn: Any, ops: Sequence[WriteOp]) -> None:
        """Insert the rows of ``ops`` on ``conn``, inside the caller's transaction."""
        now = time.time()
        rows = []
        for op in ops:
            if isinstance(op, Insert):
                rows.append(self._row("create", op.key, None, op.item, now))
            elif isinstance(op, Replace):
                rows.append(self._row("update", op.key, op.old, op.item, now))
            else:
                rows.append(self._row("delete", op.key, op.old, None, now))
        await self.executor.run_many(conn, self.schema.sql_insert, rows)

    async def write_created(self, conn: Any, items: Sequence[Any]) -> None:
        """Insert the rows of newly created ``items``, inside the caller's transaction."""
        now = time.time()
        key_values = self.meta.key_values
        await self.executor.run_many(
            conn,
            self.schema.sql_insert,
            [self._row("create", key_values(i), None, i, now) for i in items],
        )

    async def done(self, ids: Sequence[str]) -> None:
        """Delete delivered rows (ids that are gone already are fine)."""
        if ids:
            ex = self.executor
            # one transaction: in autocommit each delete would commit on its own
            async with ex.connection() as conn, ex.transaction(conn):
                await ex.run_many(conn, self.schema.sql_delete, [(i,) for i in ids])

    async def claim(self, limit: int = 100) -> list[tuple[str, str, str, Any, Any, dt.datetime]]:
        """Take over up to ``limit`` rows whose lease ran out, oldest first, and lease them
        to this process: ``(id, kind, key, old, new, at)`` with the items decoded."""
        await self.tables.ensure_outbox()
        s = self.schema
        now = time.time()
        claimed = []
        async with self.executor.connection() as conn:
            due = await self.executor.fetch(conn, s.sql_due, (self.store, now, limit))
            for change_id, until in due:
                # a conditional update: of two processes claiming one row, one wins
                if await self.executor.run(conn, s.sql_claim, (now + self.lease, change_id, until)):
                    rows = await self.executor.fetch(conn, s.sql_get, (change_id,))
                    if rows:
                        kind, key, old, new, at = rows[0]
                        claimed.append(
                            (
                                change_id,
                                kind,
                                key,
                                self._item(old),
                                self._item(new),
                                dt.datetime.fromtimestamp(at, dt.UTC),
                            )
                        )
        return claimed

    def _item(self, doc: Any) -> Any:
        return None if doc is None else self.meta.decode(doc)

    async def pending(self) -> int:
        """How many changes of this store wait in the outbox (leased or not)."""
        await self.tables.ensure_outbox()
        async with self.executor.connection() as conn:
            rows = await self.executor.fetch(conn, self.schema.sql_count, (self.store,))
        return int(rows[0][0])


class AsyncSqlOutboxStore(AsyncSqlStore):
    """A SQL store that writes each change to the outbox in the transaction of its write
    (made by :meth:`AsyncSqlStore.with_outbox`). Its writes take the general paths of the
    base store, which know the old item every change row needs.
    """

    checks_expected = False  # a change row needs the old item: read it before each write

    def __init__(self, of: AsyncSqlStore, outbox: AsyncSqlOutbox) -> None:
        super().__init__(of.meta, of.pages, of.schema, of.executor, of.tables, of._outboxes)
        self.clock = of.clock
        self.default_limit = of.default_limit
        self.outbox = outbox

    _logs = True

    async def _prepare(self) -> list[str]:
        done = await super()._prepare()
        await self.tables.ensure_outbox()
        return done

    async def _log(self, conn: Any, ops: Sequence[WriteOp]) -> None:
        await self.outbox.write(conn, ops)

    async def _log_created(self, conn: Any, items: Sequence[Any]) -> None:
        await self.outbox.write_created(conn, items)

    async def _commit_once(
        self, ops: Sequence[WriteOp], atomic: bool
    ) -> list[PersistyError | None]:
        # (the SQL store's _commit tries a collided write again around this)
        if not ops:
            return []
        # every write commits with its outbox rows: one transaction per op when not atomic
        async with self._conn() as conn:
            if atomic:
                return await self._commit_atomic(conn, ops)
            results: list[PersistyError | None] = []
            for op in ops:
                results.extend(await self._commit_atomic(conn, [op]))
            return results

    # the one-statement paths of the SQL store do not read the old item: take the base's

    async def update(
        self, item: Any, *, if_match: str | None = None, precondition: Filter | None = None
    ) -> Any:
        return await AsyncStoreBase.update(self, item, if_match=if_match, precondition=precondition)

    async def put(self, item: Any, *, if_match: str | None = None) -> Any:
        return await AsyncStoreBase.put(self, item, if_match=if_match)

    async def patch(
        self,
        key: str,
        changes: Mapping[str, Any],
        *,
        if_match: str | None = None,
        precondition: Filter | None = None,
    ) -> Any:
        # the row is held from its read to the commit (FOR UPDATE; SQLite's BEGIN IMMEDIATE
        # holds the database) and the change row written in that transaction, so concurrent
        # patches of one item queue instead of losing races and trying again
        changes = check_changes(self.meta, changes)
        k = self.meta.parse_key(key)
        names = self._patch_names(changes)
        return await self._patch_locked(k, key, names, changes, if_match, precondition)

    async def delete(
        self, key: str, *, if_match: str | None = None, precondition: Filter | None = None
    ) -> None:
        await AsyncStoreBase.delete(self, key, if_match=if_match, precondition=precondition)

    async def purge_expired(self, limit: int | None = None) -> int:
        return await AsyncStoreBase.purge_expired(self, limit)  # each deletion has its row

    async def update_all(self, filter: Filter | None, changes: Mapping[str, Any]) -> int:
        return await AsyncStoreBase.update_all(self, filter, changes)

    async def delete_all(self, filter: Filter | None) -> int:
        return await AsyncStoreBase.delete_all(self, filter)


def with_outbox(store: AsyncSqlStore, lease: float) -> tuple[AsyncSqlOutboxStore, AsyncSqlOutbox]:
    """``store`` again, writing to the outbox, and that outbox."""
    outbox = AsyncSqlOutbox(store.executor, store.tables, store.schema.name, store.meta, lease)
    return AsyncSqlOutboxStore(store, outbox), outbox
