"""The SQL store (async): one table per store, every filter in SQL, pages seek by key.

A store's fixed statements are built once (``TableSchema``), filter statements per call
(their text is stable per filter shape, so the drivers' statement caches and prepared
statements apply), and all of them run through the database's executor.

The sync twin ``_sync/store.py`` is generated from this file by
``scripts/generate_sync.py``; edit this file, never the twin.
"""

from __future__ import annotations

import asyncio
import itertools
import operator
import random
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import msgspec

from persisty.backends.sql._async.executor import AsyncSqlExecutor
from persisty.backends.sql._async.tables import AsyncSqlTables
from persisty.backends.sql._blind import value_checks
from persisty.backends.sql._table import ETAG, TableSchema
from persisty.errors import (
    ConcurrentChange,
    Conflict,
    IntegrityError,
    NotFound,
    PersistyError,
    PreconditionFailed,
    Unavailable,
    ValidationError,
)
from persisty.model import StoreMeta, etag
from persisty.query import NONE, Filter, PageKeys, Sort, validate_filter
from persisty.store import (
    MAX_RETRIES,
    AsyncStoreBase,
    Edit,
    EditKind,
    EditResult,
    Insert,
    Key,
    OrderArg,
    Page,
    Remove,
    Replace,
    WriteOp,
    check_changes,
    has_increments,
    patched_attrs,
    prepare_create,
    prepare_creates,
    prepare_patch,
    prepare_update,
)

if TYPE_CHECKING:
    from persisty.backends.sql._async.outbox import AsyncSqlOutbox

OutboxFactory = Callable[["AsyncSqlStore", float], tuple["AsyncSqlStore", "AsyncSqlOutbox"]]
"""Makes the outbox twin of a store (given by the database, which knows both modules)."""

_KIND = operator.attrgetter("kind")


class AsyncSqlStore(AsyncStoreBase[Any]):
    """A Store over one SQL table: every filter runs in SQL, pages seek by key.

    Example::

        db = persisty.aio.connect("sqlite:///notes.db")
        notes = db.store(Note)
        await notes.search(F.title.icontains("x"), order=[-F.priority])
    """

    checks_expected = True  # UPDATE/DELETE … WHERE key AND _etag = ?: no read first

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
        self._checks = value_checks(meta) if self.dialect.doc_set_sql is not None else None

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

    def with_outbox(self, lease: float = 30.0) -> tuple[AsyncSqlStore, AsyncSqlOutbox]:
        """This store again, writing each change to the outbox table in the transaction of
        its write, and the outbox to deliver and clear those changes; how
        ``observed(store, outbox=True)`` makes delivery at-least-once across a crash.

        ``lease`` is how many seconds the writer has to deliver before
        :meth:`AsyncSqlOutbox.claim` lets another process take the change over.

        Example::

            store, outbox = db.store(Note).with_outbox()
            with outbox.collecting() as ids:
                await store.create(note)      # the note and its change commit together
            ...                               # deliver the change, then
            await outbox.done(ids)
        """
        if self._outboxes is None:
            raise ValidationError(
                f"{self.meta.name}: this store was opened without an outbox", field="outbox"
            )
        return self._outboxes(self, lease)

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

    # ---- faster paths with the same semantics ------------------------------------------------

    async def search(
        self,
        filter: Filter | None = None,
        order: OrderArg = None,
        limit: int | None = None,
        page_key: str | None = None,
    ) -> Page[Any]:
        if page_key is not None and self._epoch != self.tables.epoch:
            await self._prepare()  # the page-key secret is kept in the database
        return await super().search(filter, order, limit, page_key)

    async def read(self, key: str) -> Any:
        if self._str_key and type(key) is str and key and self.meta.expires is None:
            rows = await self._query(self.schema.sql_get, (key,))
            return self._decode(rows[0][0]) if rows else None
        return await super().read(key)

    async def read_batch(self, keys: Sequence[str]) -> list[Any]:
        if (
            self._str_key
            and self.meta.expires is None
            and isinstance(keys, list | tuple)
            and all(type(k) is str and k for k in keys)
        ):
            if not keys:
                return []
            return [None if f is None else f[0] for f in await self._by_params(list(keys))]
        return await super().read_batch(keys)

    def _conditions(
        self, sql: str, params: list[Any], if_match: str | None, precondition: Filter | None
    ) -> str:
        """``sql`` (ending in its key condition) with the etag and precondition checks."""
        if if_match is not None:
            sql += f" AND {self.dialect.quote(ETAG)} = {self.dialect.ph}"
            params.append(if_match)
        if precondition is not None:
            f = validate_filter(precondition, self.meta)
            sql += f" AND {self.schema.compiler.where(f, params)}"
        return sql

    async def _not_written(self, key: Key) -> PersistyError:
        """Why a conditional statement changed no row: missing, or a failed condition."""
        rows = await self._query(self.schema.sql_etag, self.schema.key_params(key))
        if not rows:
            return NotFound(f"no {self.meta.name} with key {self.meta.key_string(key)!r}")
        return PreconditionFailed(
            "the item has changed (etag does not match) or the precondition does not hold"
        )

    async def update(
        self, item: Any, *, if_match: str | None = None, precondition: Filter | None = None
    ) -> Any:
        if precondition is None or not self._blind_update or self.meta.expires is not None:
            return await super().update(item, if_match=if_match, precondition=precondition)
        # nothing of the stored item is kept: one UPDATE with the precondition in SQL
        if not isinstance(item, self.meta.cls):
            item = self.meta.from_builtins(item)
        new = prepare_update(self.meta, item, item, self.clock())
        key = self.meta.key_values(new)
        s = self.schema
        params = list(s.update_row(new))
        sql = self._conditions(s.sql_update, params, if_match, precondition)
        if await self._execute(sql, params) == 0 and not (
            if_match is not None
            and await self._filled(key, if_match)
            and await self._execute(sql, params)
        ):
            raise await self._not_written(key)
        return new

    async def purge_expired(self, limit: int | None = None) -> int:
        if self.meta.expires is None:
            return 0
        s = self.schema
        return await self._execute(s.purge_sql(limit), (s.param(self.meta.expires, self.clock()),))

    async def put(self, item: Any, *, if_match: str | None = None) -> Any:
        if if_match is not None or not self._blind_put:
            return await super().put(item, if_match=if_match)
        # create and update give the same item: one INSERT … ON CONFLICT DO UPDATE
        new = prepare_create(self.meta, item, self.clock())
        s = self.schema
        await self._execute(s.sql_upsert, s.insert_row(new))
        return new

    async def patch(
        self,
        key: str,
        changes: Mapping[str, Any],
        *,
        if_match: str | None = None,
        precondition: Filter | None = None,
    ) -> Any:
        if self.meta.expires is not None:
            return await super().patch(key, changes, if_match=if_match, precondition=precondition)
        names = self._patched.get(tuple(changes)) if type(changes) is dict else None
        increments = names is None or has_increments(changes)
        if increments:  # names seen before need no check again; increment values do
            changes = check_changes(self.meta, changes)
            increments = has_increments(changes)
            if names is None:
                names = self._patched[tuple(changes)] = tuple(
                    dict.fromkeys(
                        [
                            *patched_attrs(changes),
                            *(a.name for a in self.meta.attrs if a.generated == "updated"),
                        ]
                    )
                )
        assert names is not None
        k = (key,) if self._str_key and type(key) is str and key else self.meta.parse_key(key)
        s = self.schema
        if if_match is None and precondition is None and not increments:
            if self._checks is not None and not self._logs:
                done = await self._patch_blind(k, key, names, changes)
                if done is not None:
                    return done
            # read, then one UPDATE of the changed columns while the row is as read
            keyp = s.key_params(k)
            for _ in range(MAX_RETRIES):
                rows = await self._query(s.sql_get, keyp)
                if not rows:
                    raise NotFound(f"no {self.meta.name} with key {key!r}")
                if not rows[0][1]:  # an empty etag says nothing of a change: hold the row
                    break
                new = prepare_patch(self.meta, self._decode(rows[0][0]), changes, self.clock())
                _, params = s.patch_params(names, new, k, rows[0][1])
                if await self._execute(s.patch_sql(names, True), params):
                    return new
                self.retries += 1
            else:
                raise Conflict("too many concurrent changes; try again")
        # increments and conditions: one transaction holding the row, so no lost race (a
        # deadlock the engine resolved by rolling it back is tried again)
        for attempt in itertools.count():
            try:
                return await self._patch_locked(k, key, names, changes, if_match, precondition)
            except ConcurrentChange:
                if attempt + 1 >= COLLISION_RETRIES:
                    raise
                await _after_collision(attempt)
        raise AssertionError("unreachable")

    _logs = False
    """Whether :meth:`_log` writes each change (the outbox twin): its patches read first."""

    async def _patch_blind(
        self, k: Key, key: str, names: tuple[str, ...], changes: Mapping[str, Any]
    ) -> Any:
        """A patch in one ``UPDATE … RETURNING`` (no read), the new item; ``None`` when a
        value does not pass its check or the engine refused the write (the read path then
        gives the error that names the culprit)."""
        assert self._checks is not None
        checked = self._checks.checked
        by_name = self.schema.by_name
        now = None
        cols: list[Any] = []
        docs: list[Any] = []
        for n in names:
            if n in changes:
                got = checked(n, changes[n])
            else:  # an ``updated`` timestamp
                now = now or self.clock()
                got = checked(n, now)
            if got is None:
                return None
            v, raw = got
            conv = by_name[n].conv
            cols.append(v if conv is None or v is None else conv(v))
            docs.append(raw.decode())
        s = self.schema
        try:
            rows = await self._query(s.blind_patch_sql(names), [*cols, *docs, *s.key_params(k)])
        except ConcurrentChange:
            raise
        except PersistyError:
            return None
        if not rows:
            raise NotFound(f"no {self.meta.name} with key {key!r}")
        return self._decode(rows[0][0])

    async def _patch_locked(
        self,
        k: Key,
        key: str,
        names: tuple[str, ...],
        changes: Mapping[str, Any],
        if_match: str | None,
        precondition: Filter | None,
    ) -> Any:
        s = self.schema
        async with self._conn() as conn:
            await self.executor.begin(conn)
            try:
                rows = await self.executor.fetch(conn, s.sql_get_locked, s.key_params(k), s)
                if not rows:
                    raise NotFound(f"no {self.meta.name} with key {key!r}")
                current = self._decode(rows[0][0])
                self._check((current, rows[0][1] or etag(current)), if_match, precondition)
                new = prepare_patch(self.meta, current, changes, self.clock())
                _, params = s.patch_params(names, new, k)
                await self.executor.run(conn, s.patch_sql(names, False), params, s)
                await self.executor.commit(conn)
            except BaseException:
                await self.executor.rollback(conn, quiet=True)
                raise
        return new

    async def delete(
        self, key: str, *, if_match: str | None = None, precondition: Filter | None = None
    ) -> None:
        if precondition is None or self.meta.expires is not None:
            # (an expired item is not there to delete)
            return await super().delete(key, if_match=if_match, precondition=precondition)
        # one DELETE with the precondition in SQL
        k = self.meta.parse_key(key)
        s = self.schema
        params = list(s.key_params(k))
        sql = self._conditions(s.sql_delete, params, if_match, precondition)
        if await self._execute(sql, params) == 0 and not (
            if_match is not None
            and await self._filled(k, if_match)
            and await self._execute(sql, params)
        ):
            raise await self._not_written(k)

    async def edit_batch(self, edits: Sequence[Edit], atomic: bool = True) -> list[EditResult[Any]]:
        edits = list(edits)
        # (type and kind checked by C-level maps: this runs once per item of a bulk load)
        if not (
            atomic
            and len(edits) > 1
            and not self.meta.sequence_attrs
            and set(map(type, edits)) == {Edit}
            and set(map(_KIND, edits)) == {EditKind.CREATE}
        ):
            return await super().edit_batch(edits, atomic)
        # a batch of creates: one multi-row INSERT in one transaction; any failure (a bad
        # item, a taken key) falls back to the general path, which names the culprit
        now = self.clock()
        s = self.schema
        try:
            news = prepare_creates(self.meta, [e.item for e in edits], now)
            rows = s.insert_rows(news)
        except PersistyError:
            return await super().edit_batch(edits, atomic)
        try:
            async with self._conn() as conn:
                await self.executor.begin(conn)
                try:
                    await self.executor.run_many(conn, s.sql_insert, rows, s)
                    await self._log_created(conn, news)
                except BaseException:
                    await self.executor.rollback(conn, quiet=True)
                    raise
                await self.executor.commit(conn)
        except (Conflict, ValidationError):
            return await super().edit_batch(edits, atomic)
        return list(map(EditResult, edits, itertools.repeat(True), itertools.repeat(None), news))

    async def delete_all(self, filter: Filter | None) -> int:
        f = self._live(validate_filter(filter, self.meta))
        if f is NONE:
            return 0
        sql, params = self.schema.compiler.delete_where(f)
        async with self._conn() as conn:
            return await self.executor.run(conn, sql, params, self.schema)

    async def update_all(self, filter: Filter | None, changes: Mapping[str, Any]) -> int:
        changes = check_changes(self.meta, changes)
        f = self._live(validate_filter(filter, self.meta))
        if f is NONE:
            return 0
        s = self.schema
        sql, params = s.compiler.select(f, (), None, None, what=s.quoted_doc, lock=True)
        now = self.clock()
        async with self._conn() as conn:
            await self.executor.begin(conn)
            try:
                rows = await self.executor.fetch(conn, sql, params, s)
                batch = []
                for (doc,) in rows:
                    new = prepare_patch(self.meta, self._decode(doc), changes, now)
                    batch.append(s.update_params(new, etag(new)))
                if batch:
                    await self.executor.run_many(conn, s.sql_update, batch, s)
                await self.executor.commit(conn)
            except BaseException:
                await self.executor.rollback(conn, quiet=True)
                raise
        return len(batch)


COLLISION_RETRIES = 5
"""Tries of a write the engine rolled back for colliding with another (a deadlock)."""


async def _after_collision(attempt: int) -> None:
    """Wait a random moment (growing, at most 50 ms) before trying a collided write again,
    so the writers that deadlocked do not meet again in lockstep."""
    await asyncio.sleep(random.uniform(0, min(0.05, 0.002 * 2**attempt)))
