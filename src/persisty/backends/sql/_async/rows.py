"""The SQL store's hooks (async): its state, connections, reads, commits of write ops,
filters run as SQL, sequences. ``store.py`` adds the one-statement paths.

The sync twin ``_sync/rows.py`` is generated from this file by ``scripts/generate_sync.py``;
edit this file, never the twin.
"""

from __future__ import annotations

import asyncio
import itertools
import random
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import msgspec

from persisty.backends.sql._async.executor import AsyncSqlExecutor
from persisty.backends.sql._async.tables import AsyncSqlTables
from persisty.backends.sql._blind import FastPatch, value_checks
from persisty.backends.sql._table import TableSchema
from persisty.errors import (
    ConcurrentChange,
    IntegrityError,
    NotFound,
    PersistyError,
    PreconditionFailed,
    Unavailable,
    ValidationError,
)
from persisty.model import StoreMeta, etag
from persisty.query import ALL, Filter, PageKeys, Sort
from persisty.store import (
    AsyncStoreBase,
    Insert,
    Key,
    Plan,
    Remove,
    Replace,
    WriteOp,
)

if TYPE_CHECKING:
    from persisty.backends.sql._async.store import OutboxFactory


class AsyncSqlRows(AsyncStoreBase[Any]):
    """The hooks of :class:`AsyncSqlStore` (which adds the one-statement paths)."""

    def __init__(
        self,
        meta: StoreMeta,
        pages: PageKeys,
        schema: TableSchema,
        executor: AsyncSqlExecutor,
        tables: AsyncSqlTables,
        outboxes: OutboxFactory | None = None,
    ) -> None:
        super().__init__(meta, pages)
        self._outboxes = outboxes
        self.schema = schema
        self.dialect = schema.dialect
        self.executor = executor
        """Runs this store's statements (pool, transactions, error translation)."""
        self.tables = tables
        """Creates this store's table when first needed."""
        self._epoch = -1  # the tables' epoch this store's table was last checked in
        decoder = msgspec.json.Decoder(meta.cls)

        def decode(doc: bytes | str) -> Any:
            try:
                return decoder.decode(doc)
            except (msgspec.ValidationError, msgspec.DecodeError) as e:
                raise IntegrityError(
                    f"a stored {meta.name} does not fit the model ({e}); migrate or rewrite it"
                ) from None

        self._decode = decode
        self._patched: dict[tuple[str, ...], tuple[str, ...]] = {}
        self._fast_patches: dict[tuple[str, ...], FastPatch] = {}
        """Patches of only plain attributes seen before: their statement and checks."""
        self._eq_counts: dict[tuple[str, type], str] = {}
        """``count(F.attr == value)`` statements per attribute and value type."""
        # put() is one upsert when nothing of a stored item is kept and creating sets
        # nothing an update would not (MySQL's upsert fires on any unique index: none then)
        self._blind_put = (
            all(
                a.updatable and a.creatable and a.generated in (None, "updated")
                for a in meta.attrs
                if a.name not in meta.key.attrs
            )
            and not meta.sequence_attrs
            and (self.dialect.upsert_on_key_only or not any(ix.unique for ix in meta.indexes))
        )
        self._str_key = len(meta.key.attrs) == 1 and meta.key_attrs[0].kind == "str"
        # a patch without a read: the engine sets the values inside the document
        self._checks = (
            value_checks(meta, {c.name: c.conv for c in schema.columns})
            if self.dialect.sets_in_doc
            else None
        )

    # ---- connections --------------------------------------------------------------------

    async def _prepare(self) -> list[str]:
        # the tables' epoch stands for the base class's ready flag: a drop or migrate of
        # the database's tables (not of this store object) makes every store check again
        epoch = self.tables.epoch
        await self.tables.ensure(self.schema)
        self._epoch = epoch
        return []

    @asynccontextmanager
    async def _conn(self) -> AsyncIterator[Any]:
        if self._epoch != self.tables.epoch:
            await self._prepare()
        async with self.executor.connection(self.schema) as conn:
            yield conn

    async def _query(self, sql: str, params: Sequence[Any]) -> list[Any]:
        """Rows of one statement on a pooled connection (the hot path)."""
        if self._epoch != self.tables.epoch:
            await self._prepare()
        return await self.executor.query(sql, params, self.schema)

    async def _execute(self, sql: str, params: Sequence[Any]) -> int:
        """Row count of one statement on a pooled connection (one statement on its own is
        rolled back whole by a deadlock: it is tried again)."""
        if self._epoch != self.tables.epoch:
            await self._prepare()
        for attempt in itertools.count():
            try:
                return await self.executor.execute(sql, params, self.schema)
            except ConcurrentChange:
                if attempt + 1 >= COLLISION_RETRIES:
                    raise
                await _after_collision(attempt)
        raise AssertionError("unreachable")

    async def _log(self, conn: Any, ops: Sequence[WriteOp]) -> None:
        """Called in the transaction of ``ops`` before it commits (the outbox writes its
        rows here); nothing by default."""

    async def _log_created(self, conn: Any, items: Sequence[Any]) -> None:
        """:meth:`_log` for the inserts of a bulk create."""

    # ---- hooks --------------------------------------------------------------------------

    async def _get(self, key: Key) -> tuple[Any, str] | None:
        rows = await self._query(self.schema.sql_get, self.schema.key_params(key))
        if not rows:
            return None
        doc, tag = rows[0]
        item = self._decode(doc)
        return item, tag or etag(item)  # (empty after a patch without a read)

    async def _get_many(self, keys: Sequence[Key]) -> list[tuple[Any, str] | None]:
        if not keys:
            return []
        s = self.schema
        decode = self._decode
        unique = list(dict.fromkeys(keys))
        if len(s.key_cols) == 1:
            return await self._by_params([s.key_params(k)[0] for k in keys])
        found: dict[Key, tuple[Any, str]] = {}
        for start in range(0, len(unique), 500):
            chunk = unique[start : start + 500]
            params: list[Any] = []
            for k in chunk:
                params.extend(s.key_params(k))
            for doc, tag, _ in await self._query(s.sql_get_many(len(chunk)), params):
                item = decode(doc)
                found[self.meta.key_values(item)] = (item, tag or etag(item))
        return [found.get(tuple(k)) for k in keys]

    async def _by_params(self, params_of: list[Any]) -> list[tuple[Any, str] | None]:
        """Rows for single-column keys given as driver parameters, matched on the key
        column each row comes back with."""
        s = self.schema
        decode = self._decode
        by_param: dict[Any, tuple[Any, str]] = {}
        wanted = list(dict.fromkeys(params_of))
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            for doc, tag, kv in await self._query(s.sql_get_many(len(chunk)), chunk):
                item = decode(doc)
                by_param[kv] = (item, tag or etag(item))
        return [by_param.get(p) for p in params_of]

    async def _commit(self, ops: Sequence[WriteOp], atomic: bool) -> list[PersistyError | None]:
        # a write the engine rolled back for colliding with another (a deadlock) is tried
        # again: all of an atomic batch, only the rolled back writes of another one
        results = await self._commit_collided(ops, atomic)
        for attempt in range(COLLISION_RETRIES - 1):
            collided = [i for i, r in enumerate(results) if isinstance(r, ConcurrentChange)]
            if not collided:
                break
            await _after_collision(attempt)
            if atomic:
                results = await self._commit_collided(ops, atomic)
            else:
                again = await self._commit_collided([ops[i] for i in collided], False)
                for i, r in zip(collided, again, strict=True):
                    results[i] = r
        return results

    async def _commit_collided(
        self, ops: Sequence[WriteOp], atomic: bool
    ) -> list[PersistyError | None]:
        """:meth:`_commit_once`, a collision raised (at commit) reported as a result."""
        try:
            return await self._commit_once(ops, atomic)
        except ConcurrentChange as e:
            return [e] * len(ops)

    async def _commit_once(
        self, ops: Sequence[WriteOp], atomic: bool
    ) -> list[PersistyError | None]:
        if not ops:
            return []
        if len(ops) == 1 and not isinstance(ops[0], Insert):
            return [await self._write_one(ops[0])]
        async with self._conn() as conn:
            if len(ops) == 1:
                try:
                    await self._apply(conn, ops[0])
                except PersistyError as e:
                    return [e]
                return [None]
            if atomic:
                return await self._commit_atomic(conn, ops)
            results: list[PersistyError | None] = []
            for op in ops:
                try:
                    await self._apply(conn, op)
                    results.append(None)
                except PersistyError as e:
                    results.append(e)
            return results

    async def _write_one(self, op: Replace | Remove) -> PersistyError | None:
        """One conditional statement on the hot path (no transaction, no context manager)."""
        s = self.schema
        expected = op.expected
        if isinstance(op, Replace):
            sql = s.sql_update if expected is None else s.sql_update_if
            params = s.update_params(op.item, op.etag, expected, op.doc)
        else:
            sql = s.sql_delete if expected is None else s.sql_delete_if
            params = s.key_params(op.key)
            if expected is not None:
                params = (*params, expected)
        if await self._execute(sql, params):
            return None
        if (
            expected is not None
            and await self._filled(op.key, expected)
            and await self._execute(sql, params)
        ):
            return None
        if expected is not None and await self._query(s.sql_etag, s.key_params(op.key)):
            return PreconditionFailed("the item has changed (etag does not match)")
        return NotFound(f"no {self.meta.name} with key {self.meta.key_string(op.key)!r}")

    async def _commit_atomic(self, conn: Any, ops: Sequence[WriteOp]) -> list[PersistyError | None]:
        results: list[PersistyError | None] = [None] * len(ops)
        await self.executor.begin(conn)
        try:
            i = 0
            while i < len(ops):
                j = i
                while j < len(ops) and isinstance(ops[j], Insert):
                    j += 1
                if j - i > 1:
                    inserts = ops[i:j]
                    try:
                        await self.executor.run_many(
                            conn,
                            self.schema.sql_insert,
                            [
                                self.schema.insert_params(op.item, op.etag, op.doc)  # type: ignore[union-attr]
                                for op in inserts
                            ],
                            self.schema,
                        )
                    except PersistyError:
                        # find which insert failed, then undo everything
                        await self.executor.rollback(conn)
                        return await self._find_failure(conn, ops)
                    i = j
                    continue
                try:
                    await self._apply(conn, ops[i])
                except PersistyError as e:
                    results[i] = e
                    await self.executor.rollback(conn)
                    return results
                i += 1
            await self._log(conn, ops)
            await self.executor.commit(conn)
            return results
        except BaseException:
            await self.executor.rollback(conn, quiet=True)
            raise

    async def _find_failure(self, conn: Any, ops: Sequence[WriteOp]) -> list[PersistyError | None]:
        results: list[PersistyError | None] = [None] * len(ops)
        await self.executor.begin(conn)
        try:
            for i, op in enumerate(ops):
                try:
                    await self._apply(conn, op)
                except PersistyError as e:
                    results[i] = e
                    break
        finally:
            await self.executor.rollback(conn, quiet=True)
        if not any(results):
            results[0] = Unavailable("the batch failed; try again")
        return results

    async def _apply(self, conn: Any, op: WriteOp) -> None:
        try:
            await self._apply_op(conn, op)
        except ValidationError as e:
            # an engine that reports a value too large for an index without naming the index
            # (PostgreSQL: "index row requires … bytes"): the largest indexed value is at fault
            if (
                e.field is None
                and not isinstance(op, Remove)
                and (self.dialect.index_entry_too_large(e.message))
            ):
                raise ValidationError(
                    e.message, field=self.schema.largest_indexed(op.item)
                ) from None
            raise

    async def _apply_op(self, conn: Any, op: WriteOp) -> None:
        s = self.schema
        db = self.executor
        if isinstance(op, Insert):
            await db.run(conn, s.sql_insert, s.insert_params(op.item, op.etag, op.doc), s)
            return
        if isinstance(op, Replace):
            if op.expected is None:
                sql, params = s.sql_update, s.update_params(op.item, op.etag)
            else:
                sql, params = s.sql_update_if, s.update_params(op.item, op.etag, op.expected)
        elif isinstance(op, Remove):
            if op.expected is None:
                sql, params = s.sql_delete, s.key_params(op.key)
            else:
                sql, params = s.sql_delete_if, (*s.key_params(op.key), op.expected)
        else:
            raise ValidationError(f"unknown write {op!r}")
        n = await db.run(conn, sql, params, s)
        if n == 0 and op.expected is not None and await self._filled(op.key, op.expected, conn):
            n = await db.run(conn, sql, params, s)
        if n == 0:
            await self._missing(conn, op.key, op.expected)

    async def _filled(self, key: Key, expected: str, conn: Any = None) -> bool:
        """Whether the row of ``key`` had an empty etag (a patch without a read) whose
        document hashes to ``expected``, now filled in: the conditional write that found
        no row may try again."""
        s = self.schema
        kp = s.key_params(key)
        if conn is None:
            rows = await self._query(s.sql_get, kp)
        else:
            rows = await self.executor.fetch(conn, s.sql_get, kp, s)
        if not rows or rows[0][1] or etag(self._decode(rows[0][0])) != expected:
            return False
        params = (expected, *kp, rows[0][0])
        if conn is None:
            return await self._execute(s.sql_fill_etag, params) > 0
        return await self.executor.run(conn, s.sql_fill_etag, params, s) > 0

    async def _missing(self, conn: Any, key: Key, expected: str | None) -> None:
        key_text = self.meta.key_string(key)
        if expected is not None:
            rows = await self.executor.fetch(
                conn, self.schema.sql_etag, self.schema.key_params(key), self.schema
            )
            if rows:
                raise PreconditionFailed("the item has changed (etag does not match)")
        raise NotFound(f"no {self.meta.name} with key {key_text!r}")

    async def _find(
        self, native: Filter, spec: Sort, after: Sequence[Any] | None, limit: int | None
    ) -> list[Any]:
        sql, params = self.schema.compiler.select(native, spec, after, limit)
        rows = await self._query(sql, params)
        decode = self._decode
        return [decode(r[0]) for r in rows]

    async def _count(self, native: Filter) -> int:
        sql, params = self.schema.compiler.count(native)
        rows = await self._query(sql, params)
        return int(rows[0][0])

    def _plan(self, f: Filter, spec: Sort) -> Plan:
        native, residual = self.schema.compiler.split(f)
        if residual is ALL:
            return Plan(f)
        detail = self._describe(native, spec) + f"; residual in Python: {residual!r}"
        return Plan(native, residual, True, detail)

    def _describe(self, native: Filter, spec: Sort) -> str:
        sql, params = self.schema.compiler.select(native, spec, None, self.default_limit + 1)
        return f"{self.dialect.name}: {sql}; parameters {params!r}"

    async def _next_sequence(self, attr: str) -> int:
        name = f"seq:{self.schema.name}:{attr}"
        async with self._conn() as conn:
            statements = self.tables.meta.sql_next
            rows: list[Any] = []
            for i, sql in enumerate(statements):
                if i == len(statements) - 1:
                    rows = await self.executor.fetch(conn, sql, (name,) if i == 0 else ())
                else:
                    await self.executor.run(conn, sql, (name,))
        return int(rows[0][0])

    async def _skip_sequence(self, attr: str, by: int) -> None:
        # the counter's row exists: _advance_sequences took a number from it first
        await self._execute(self.tables.meta.sql_skip, (by, f"seq:{self.schema.name}:{attr}"))


COLLISION_RETRIES = 5
"""Tries of a write the engine rolled back for colliding with another (a deadlock)."""


async def _after_collision(attempt: int) -> None:
    """Wait a random moment (growing, at most 50 ms) before trying a collided write again,
    so the writers that deadlocked do not meet again in lockstep."""
    await asyncio.sleep(random.uniform(0, min(0.05, 0.002 * 2**attempt)))
