"""The patch paths of the SQL store (async): a patch in one ``UPDATE … RETURNING``
without a read, its hot path for plain values planned once per set of attributes, and the
patch that holds the row from its read to its commit (increments, conditions, the outbox).

The sync twin ``_sync/patches.py`` is generated from this file by
``scripts/generate_sync.py``; edit this file, never the twin.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from typing import Any

from persisty.backends.sql._async.rows import COLLISION_RETRIES, AsyncSqlRows, _after_collision
from persisty.backends.sql._blind import FAILURES as _FAILURES
from persisty.backends.sql._blind import FastPatch
from persisty.errors import ConcurrentChange, NotFound, PersistyError
from persisty.model import etag
from persisty.query import Filter
from persisty.store import Key, Replace, patched_attrs, prepare_patch

_INT64 = 2**63


class AsyncSqlPatches(AsyncSqlRows):
    """The rows of a SQL store with its patch paths (the store, :class:`AsyncSqlStore`,
    chooses among them)."""

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
        convs = self._checks.convs
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
            conv = convs[n]
            cols.append(v if conv is None or v is None else conv(v))
            docs.append(raw)
        s = self.schema
        sql, then = s.blind_patch_sql(names)
        cols += docs
        cols += s.key_params(k)
        if then is None:
            return await self._run_plain(sql, cols, key)
        try:  # the new document is read back on the same connection
            async with self._conn() as conn:
                done = await self.executor.run(conn, sql, cols, s)
                rows = await self.executor.fetch(conn, then, (), s) if done else []
        except ConcurrentChange:
            raise
        except PersistyError:
            return None
        if not rows:
            raise NotFound(f"no {self.meta.name} with key {key!r}")
        return self._decode(rows[0][0])

    def _plan_fast(self, changed: tuple[str, ...], names: tuple[str, ...]) -> None:
        """Keep the hot path of patches of ``changed`` when every one is a bare
        str/int/float/bool attribute and the patch sets nothing else (no ``updated``
        timestamp), in one statement with ``RETURNING``, on a single str key."""
        checks = self._checks
        if checks is None or self._logs or not self._str_key or names != changed:
            return
        plain = checks.plain_plan(names)
        if plain is None:
            return
        bound = self.schema.bound_patch_sql(names)
        if bound is not None and all(t is str or t is int for _, t, _ in plain):
            self._fast_patches[changed] = (bound, plain, True)
            return
        sql, then = self.schema.blind_patch_sql(names)
        if then is None:
            self._fast_patches[changed] = (sql, plain, False)

    async def _patch_plain(self, fast: FastPatch, key: str, changes: dict[str, Any]) -> Any:
        """:meth:`_patch_blind` of values of exactly their attributes' plain types, the
        checks inlined (this runs once per patch of a write-heavy workload); ``None`` when a
        value is of another type or the engine refused (the general path then decides)."""
        sql, plain, bound = fast
        cols: list[Any] = []
        if bound:  # each value bound once, as it is: the engine writes its JSON
            for name, typ, _ in plain:
                v = changes[name]
                if type(v) is not typ:
                    return None
                if typ is int:
                    if not -_INT64 <= v < _INT64:
                        return None
                # a str of printable characters only: no control character, no lone
                # surrogate, nothing whose JSON the engine might write otherwise
                elif not v.isprintable():
                    return None
                cols.append(v)
            cols.append(key)
            return await self._run_plain(sql, cols, key)
        encode = self.meta.encode
        docs: list[str] = []
        for name, typ, conv in plain:
            v = changes[name]
            if type(v) is not typ:  # (exact: a bool is no int here)
                return None
            if typ is float:
                if not math.isfinite(v):
                    return None
            elif typ is int and not -_INT64 <= v < _INT64:
                return None
            try:
                docs.append(encode(v).decode())
            except _FAILURES:  # a lone surrogate in a str
                return None
            cols.append(v if conv is None else conv(v))
        cols += docs
        cols.append(key)
        return await self._run_plain(sql, cols, key)

    async def _run_plain(self, sql: str, cols: list[Any], key: str) -> Any:
        """The new item of one patch statement with ``RETURNING``; ``None`` when the engine
        refused a value (the general path then decides)."""
        try:
            rows = await self._query(sql, cols)
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
        """The patch that holds the row from its read to its commit (``FOR UPDATE``;
        SQLite's ``BEGIN IMMEDIATE`` holds the database): concurrent patches of one row
        queue instead of losing races. A transaction the engine rolled back for colliding
        with another (a deadlock) wrote nothing: it is tried again."""
        for attempt in itertools.count():
            try:
                return await self._patch_held(k, key, names, changes, if_match, precondition)
            except ConcurrentChange:
                if attempt + 1 >= COLLISION_RETRIES:
                    raise
                self.retries += 1
                await _after_collision(attempt)
        raise AssertionError("unreachable")

    async def _patch_held(
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
                if self._expired(current):
                    raise NotFound(f"no {self.meta.name} with key {key!r}")
                self._check((current, rows[0][1] or etag(current)), if_match, precondition)
                new = prepare_patch(self.meta, current, changes, self.clock())
                tag, params = s.patch_params(names, new, k)
                await self.executor.run(conn, s.patch_sql(names, False), params, s)
                if self._logs:
                    await self._log(conn, [Replace(k, new, tag, None, current)])
                await self.executor.commit(conn)
            except BaseException:
                await self.executor.rollback(conn, quiet=True)
                raise
        return new

    def _patch_names(self, changes: Mapping[str, Any]) -> tuple[str, ...]:
        """The attributes a patch of (checked) ``changes`` writes: the changed ones, the
        ``updated`` timestamps and the expiry a ``ttl`` renews."""
        return tuple(
            dict.fromkeys(
                [
                    *patched_attrs(changes),
                    *(a.name for a in self.meta.attrs if a.generated == "updated"),
                    *(e for e in [self.meta.expires] if e and self.meta.ttl),
                ]
            )
        )
