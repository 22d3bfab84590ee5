"""The SQL store (async): one table per store, every filter in SQL, pages seek by key.

A store's fixed statements are built once (``TableSchema``), filter statements per call
(their text is stable per filter shape, so the drivers' statement caches and prepared
statements apply), and all of them run through the database's executor. ``rows.py`` holds
the hooks; this module the paths that do in one statement what the base class does in
two.

The sync twin ``_sync/store.py`` is generated from this file by ``scripts/generate_sync.py``;
edit this file, never the twin.
"""

from __future__ import annotations

import itertools
import operator
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from persisty.backends.sql._async.patches import AsyncSqlPatches
from persisty.backends.sql._table import ETAG
from persisty.errors import (
    Conflict,
    NotFound,
    PersistyError,
    PreconditionFailed,
    ValidationError,
)
from persisty.model import etag, is_path
from persisty.query import ALL, NONE, Compare, Filter, Op, validate_filter
from persisty.store import (
    MAX_RETRIES,
    Edit,
    EditKind,
    EditResult,
    Increment,
    Key,
    OrderArg,
    Page,
    check_changes,
    gc_paused,
    has_increments,
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
_INT64 = 2**63


class AsyncSqlStore(AsyncSqlPatches):
    """A Store over one SQL table: every filter runs in SQL, pages seek by key.

    Example::

        db = persisty.aio.connect("sqlite:///notes.db")
        notes = db.store(Note)
        await notes.search(F.title.icontains("x"), order=[-F.priority])
    """

    checks_expected = True  # UPDATE/DELETE … WHERE key AND _etag = ?: no read first

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

    async def count(self, filter: Filter | None = None) -> int:
        # ``count(F.attr == value)`` of a bare str/int attribute, the commonest count: its
        # statement is kept per attribute and value type once the general path has
        # validated and compiled one such filter unchanged
        if type(filter) is Compare and filter.op is Op.EQ:
            value = filter.value
            sql = self._eq_counts.get((filter.attr, type(value)))
            if sql is not None and (type(value) is str or -_INT64 <= value < _INT64):
                rows = await self._query(sql, (self.schema.param(filter.attr, value),))
                return int(rows[0][0])
            if sql is None and self._checks is not None and self.meta.expires is None:
                self._plan_eq_count(filter)
        return await super().count(filter)

    def _plan_eq_count(self, filter: Compare) -> None:
        plain = self._checks.plain_plan((filter.attr,)) if self._checks is not None else None
        value = filter.value
        if plain is None or plain[0][1] is not type(value) or type(value) not in (str, int):
            return
        try:
            if validate_filter(filter, self.meta) != filter:
                return
        except ValidationError:
            return
        compiler = self.schema.compiler
        if compiler.split(filter)[1] is not ALL:
            return
        sql, params = compiler.count(filter)
        if params == [self.schema.param(filter.attr, value)]:
            self._eq_counts[(filter.attr, type(value))] = sql

    async def read(self, key: str) -> Any:
        if self._str_key and type(key) is str and key:
            s = self.schema
            if self.meta.expires is None:
                rows = await self._query(s.sql_get, (key,))
            else:  # the expiry checked in the statement: an expired row is not there
                rows = await self._query(
                    s.sql_get_live, (key, s.param(self.meta.expires, self.clock()))
                )
            return self._decode(rows[0][0]) if rows else None
        return await super().read(key)

    async def read_batch(self, keys: Sequence[str]) -> list[Any]:
        if (
            self._str_key
            and isinstance(keys, list | tuple)
            and all(type(k) is str and k for k in keys)
        ):
            if not keys:
                return []
            found = await self._by_params(list(keys))
            if self.meta.expires is not None:
                now = self.clock()  # one instant for the whole batch
                return [None if f is None or self._expired(f[0], now) else f[0] for f in found]
            return [None if f is None else f[0] for f in found]
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
        if (
            precondition is None
            or not self._blind_update
            or self.meta.expires is not None
            or not self.schema.compiler.pushable(validate_filter(precondition, self.meta))
        ):
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
        if type(changes) is dict and if_match is None and precondition is None:
            fast = self._fast_patches.get(tuple(changes))
            if fast is not None and type(key) is str and key:
                done = await self._patch_plain(fast, key, changes)
                if done is not None:
                    return done
        if self.meta.expires is not None and not any(
            type(v) is Increment for v in changes.values()
        ):
            return await super().patch(key, changes, if_match=if_match, precondition=precondition)
        # (an increment of an expiring model goes the locked way below, expiry checked there)
        names = self._patched.get(tuple(changes)) if type(changes) is dict else None
        # names seen before (attributes, never paths: those are not kept) need no check
        # again; increment values do
        increments = names is None or any(type(v) is Increment for v in changes.values())
        if increments:
            changes = check_changes(self.meta, changes)
            increments = has_increments(changes)
            if names is None:
                names = self._patch_names(changes)
                if not any(map(is_path, changes)):
                    self._patched[tuple(changes)] = names
                    self._plan_fast(tuple(changes), names)
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
        # increments and conditions: one transaction holding the row, so no lost race
        return await self._patch_locked(k, key, names, changes, if_match, precondition)

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
        news: list[Any] | None = None
        with gc_paused():  # (the items built here all stay alive)
            try:
                news = prepare_creates(self.meta, [e.item for e in edits], now)
                rows = s.insert_rows(news)
            except PersistyError:
                pass
        if news is None:
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
        with gc_paused():
            return list(
                map(EditResult, edits, itertools.repeat(True), itertools.repeat(None), news)
            )

    async def delete_all(self, filter: Filter | None) -> int:
        f = self._live(validate_filter(filter, self.meta))
        if f is NONE:
            return 0
        if not self.schema.compiler.pushable(f):
            return await super().delete_all(f)
        sql, params = self.schema.compiler.delete_where(f)
        async with self._conn() as conn:
            return await self.executor.run(conn, sql, params, self.schema)

    async def update_all(self, filter: Filter | None, changes: Mapping[str, Any]) -> int:
        changes = check_changes(self.meta, changes)
        f = self._live(validate_filter(filter, self.meta))
        if f is NONE:
            return 0
        if not self.schema.compiler.pushable(f):
            return await super().update_all(f, changes)
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
