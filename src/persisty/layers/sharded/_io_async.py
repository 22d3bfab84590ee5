"""The reads and atomic commits of a sharded store's rows: parent rows with the shard rows
they point to in one ``db.read_batch``, checked against their parents; a rewrite while the
parent is as read; the one commit of a batch of edits.

The sync twin ``_io_sync.py`` is generated from this file by ``scripts/generate_sync.py``;
edit this file, never the twin.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
from collections.abc import Callable, Sequence
from typing import Any

from persisty._retry import attempts, lost_too_often
from persisty.errors import IntegrityError, NotFound, PersistyError, ValidationError
from persisty.layers.sharded._rows import Children, Fetched, ShardRows, Stale, shard_error
from persisty.query import Filter
from persisty.store import (
    AsyncDatabase,
    AsyncStore,
    Edit,
    EditKind,
    EditResult,
    check_changes,
    resolve_increments,
)

READ_ATTEMPTS = 3


class AsyncShardIO(ShardRows):
    """What a sharded store reads and commits: ``database`` opened ``inner`` and the shard
    ``stores`` (by path)."""

    inner: AsyncStore[Any]
    database: AsyncDatabase
    stores: dict[str, AsyncStore[Any]]

    async def _load(self, keys: Sequence[str]) -> tuple[list[Any], Fetched]:
        """The parent rows of ``keys`` and the shard rows they are likely to point to
        (:meth:`_guess`), all in one ``db.read_batch`` (one ``BatchGetItem`` on DynamoDB)."""
        meta = self.inner.meta
        canon = [meta.key_string(meta.parse_key(k)) for k in keys]
        asked = [
            (path, k)
            for key in dict.fromkeys(canon)
            for path, ks in self._guess(key).items()
            for k in ks
        ]
        got = await self.database.read_batch(
            [(self.inner, k) for k in canon] + [(self.stores[p], k) for p, k in asked]
        )
        fetched: Fetched = {p.text: {} for p in self.shards}
        for (path, k), r in zip(asked, got[len(canon) :], strict=True):
            fetched[path][k] = r
        return got[: len(canon)], fetched

    async def _fetch(self, rows: Sequence[Any], fetched: Fetched | None = None) -> list[Any]:
        """The outer items of parent rows (``None`` stays ``None``): the shard rows not in
        ``fetched`` yet in one ``db.read_batch``; rows whose shards changed meanwhile are
        read again with their shards, then ``IntegrityError``."""
        result: list[Any] = [None] * len(rows)
        fetched = fetched if fetched is not None else {p.text: {} for p in self.shards}
        todo = [i for i, r in enumerate(rows) if r is not None]
        current = list(rows)
        for attempt in range(READ_ATTEMPTS):
            missing = list(
                dict.fromkeys(
                    (path, k)
                    for i in todo
                    for path, pairs in self._child_keys(current[i]).items()
                    for _, k in pairs
                    if k not in fetched[path]
                )
            )
            if missing:
                got = await self.database.read_batch([(self.stores[p], k) for p, k in missing])
                for (path, k), r in zip(missing, got, strict=True):
                    fetched[path][k] = r
            stale: list[int] = []
            failed_path = ""
            for i in todo:
                try:
                    result[i] = self._assemble(current[i], fetched)
                    self._remember(current[i])
                except Stale as e:
                    stale.append(i)
                    failed_path = e.path
            if not stale:
                return result
            if attempt == READ_ATTEMPTS - 1:
                raise IntegrityError(
                    f"{self.meta.name}: the {failed_path} shard does not match its item",
                    field=failed_path,
                )
            for i in stale:  # read the parent and the rows it points to again, together
                self._remember(current[i])
                for path, pairs in self._child_keys(current[i]).items():
                    for _, k in pairs:
                        fetched[path].pop(k, None)
            again, more = await self._load([self.inner.meta.key_of(current[i]) for i in stale])
            for path, found in more.items():
                fetched[path].update(found)
            todo = []
            for i, r in zip(stale, again, strict=True):
                if r is None:
                    result[i] = None  # deleted meanwhile
                else:
                    current[i] = r
                    todo.append(i)
            if not todo:
                return result
        return result

    async def _commit(self, writes: list[tuple[AsyncStore[Any], Edit]]) -> EditResult[Any]:
        """One atomic commit; the parent's result, or the first real failure."""
        results = await self.database.commit(writes, atomic=True)
        for r in results:
            if not r.ok and r.code != "aborted":
                return r
        return results[0]

    async def _current(self, key: str) -> tuple[Any, Any] | None:
        rows, fetched = await self._load([key])
        if rows[0] is None:
            return None
        item = (await self._fetch(rows, fetched))[0]
        return None if item is None else (rows[0], item)

    async def _rewrite(
        self,
        key: str,
        change: Callable[[Any], Any] | None,
        if_match: str | None,
        precondition: Filter | None,
    ) -> Any:
        """Update (``change`` gives the new item) or delete (``None``) the item with ``key``
        while its parent row is as read; tried again when it changed in between."""
        key = self.inner.meta.key_string(self.inner.meta.parse_key(key))
        for attempt in attempts():
            if attempt >= 2:  # lost races: spread the contending writers out
                await asyncio.sleep(random.uniform(0, min(0.05, 0.001 * 2**attempt)))
            found: tuple[Any, Any] | None
            plain_delete = change is None and if_match is None and precondition is None
            seen = self._seen.get(key) if plain_delete and attempt == 0 else None
            if seen is not None:
                # the pointers last seen here, kept only if the parent is still as seen:
                # one commit, no read
                writes = self._deletes(key, *seen)
                r = await self._commit(writes)
                self._forget(key)
                if r.ok:
                    return None
                if r.code in ("precondition_failed", "not_found") and r.edit is writes[0][1]:
                    continue  # changed (or gone) since: read it
                raise shard_error(r)
            if plain_delete:
                row = await self.inner.read(key)  # its pointers name every row to delete
                found = None if row is None else (row, None)
            else:
                found = await self._current(key)
            if found is None:
                raise NotFound(f"no {self.meta.name} with key {key!r}")
            row, item = found
            if item is not None:
                self._check(item, if_match, precondition)
            children: Children = {}
            if change is None:
                writes = self._writes(row, row, {}, EditKind.DELETE)
            else:
                new = self._checked(change(item))
                if self.meta.key_of(new) != self.meta.key_of(item):
                    raise ValidationError(
                        "an update cannot change the key", field=self.meta.key.attrs[0]
                    )
                new_row, children = self._split(new)
                writes = self._writes(row, new_row, children, EditKind.UPDATE)
            r = await self._commit(writes)
            if r.ok:
                if change is None:
                    self._forget(key)
                    return None
                self._remember(r.item)
                return self._assemble(r.item, self._by_key(children))
            if r.code in ("precondition_failed", "not_found") and r.edit is writes[0][1]:
                continue  # the parent changed since it was read
            raise shard_error(r)
        raise lost_too_often()

    async def _edit_together(self, edits: list[Edit]) -> list[EditResult[Any]] | None:
        """One atomic commit of every edit's writes; ``None`` when an item changed."""
        plans: list[tuple[int, int, Children, bool, str]] = []  # (first write, count, …)
        writes: list[tuple[AsyncStore[Any], Edit]] = []
        failure: tuple[int, PersistyError] | None = None
        seen: set[str] = set()
        for i, e in enumerate(edits):
            try:
                key, w, children = await self._plan(e)
                if key in seen:
                    raise ValidationError(f"the batch edits {key!r} twice", field="edits")
                seen.add(key)
            except PersistyError as err:
                failure = (i, err)
                break
            plans.append((len(writes), len(w), children, e.kind is EditKind.DELETE, key))
            writes += w
        if failure is not None:
            i, problem = failure
            return [
                EditResult(e, False, problem.code, None, problem.message, problem.field)
                if n == i
                else EditResult(
                    e, False, "aborted", None, "not applied: another edit in the batch failed"
                )
                for n, e in enumerate(edits)
            ]
        results = await self.database.commit(writes, atomic=True)
        out: list[EditResult[Any]] = []
        failed = False
        for e, (start, count, children, deleting, key) in zip(edits, plans, strict=True):
            mine = results[start : start + count]
            bad = [r for r in mine if not r.ok and r.code != "aborted"]
            if (
                bad
                and bad[0] is mine[0]
                and bad[0].code in ("precondition_failed", "not_found")
                and (e.kind is not EditKind.CREATE)
            ):
                return None  # a parent changed since it was read
            if bad:
                failed = True
                out.append(EditResult(e, False, bad[0].code, None, bad[0].message, bad[0].field))
            elif mine[0].ok:
                if deleting:
                    self._forget(key)
                else:
                    self._remember(mine[0].item)
                item = None if deleting else self._assemble(mine[0].item, self._by_key(children))
                out.append(EditResult(e, True, None, item))
            else:
                out.append(
                    EditResult(
                        e, False, "aborted", None, "not applied: another edit in the batch failed"
                    )
                )
        if failed:
            out = [
                r
                if not r.ok
                else dataclasses.replace(
                    r,
                    ok=False,
                    code="aborted",
                    item=None,
                    message="not applied: another edit in the batch failed",
                )
                for r in out
            ]
        return out

    async def _plan(self, e: Edit) -> tuple[str, list[tuple[AsyncStore[Any], Edit]], Children]:
        if not isinstance(e, Edit):
            raise ValidationError(f"not an Edit: {e!r}")
        if e.kind is EditKind.CREATE:
            new = self._checked(e.item)
            row, children = self._split(new)
            return self.meta.key_of(new), self._writes(None, row, children, e.kind), children
        if e.kind is EditKind.UPDATE:
            target = self._checked(e.item)
            key = self.meta.key_of(target)
        else:
            key = self.meta.key_string(self.meta.parse_key(e.key))
        found = await self._current(key)
        if found is None:
            raise NotFound(f"no {self.meta.name} with key {key!r}")
        row, item = found
        self._check(item, e.if_match, e.precondition)
        if e.kind is EditKind.DELETE:
            return key, self._writes(row, row, {}, e.kind), {}
        if e.kind is EditKind.PATCH:
            changes = check_changes(self.meta, e.changes or {})
            target = self._checked(self.meta.build(item, dict(resolve_increments(item, changes))))
        new_row, children = self._split(target)
        return key, self._writes(row, new_row, children, EditKind.UPDATE), children
