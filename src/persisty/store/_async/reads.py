"""The read half of the base class backends build on (async): read, read_batch, search,
count and explain over the engine hooks of ``AsyncStoreHooks`` (``hooks.py``), with the
plan split into native and residual parts, expiry filtering, and ``purge_expired``.

Edit this file: ``scripts/generate_sync.py`` writes its sync twin ``_sync/reads.py``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, TypeVar

from persisty.errors import ValidationError
from persisty.model import etag
from persisty.query import (
    ALL,
    NONE,
    And,
    Compare,
    F,
    Filter,
    Op,
    Sort,
    compile_filter,
    sort_spec,
    sort_values,
    validate_filter,
)
from persisty.store._async.contract import OrderArg
from persisty.store._async.hooks import AsyncStoreHooks
from persisty.store._types import Explain, Page, Remove, WriteOp

T = TypeVar("T")


class AsyncStoreReads(AsyncStoreHooks[T]):
    """The read side of the contract (and ``purge_expired``, a bounded search and delete)."""

    async def purge_expired(self, limit: int | None = None) -> int:
        name = self.meta.expires
        if name is None:
            return 0
        f = validate_filter(F[name] <= self.clock(), self.meta)
        found = await self._collect(f, sort_spec(self.meta, None), None, limit)
        ops: list[WriteOp] = [Remove(self.meta.key_values(i), etag(i), i) for i in found]
        if not ops:
            return 0
        return sum(1 for err in await self._commit(ops, False) if err is None)

    async def read(self, key: str) -> T | None:
        found = await self._get(self.meta.parse_key(key))
        if found is None or (self.meta.expires is not None and self._expired(found[0])):
            return None
        return found[0]

    def _prepare_search(
        self, filter: Filter | None, order: OrderArg, page_key: str | None
    ) -> tuple[Filter, Sort, tuple[Any, ...] | None]:
        f = validate_filter(filter, self.meta)
        if self.meta.expires is not None:
            f = self._live(f)
        spec = sort_spec(self.meta, order)
        after = None if page_key is None else self.pages.decode(page_key, self.meta, spec)
        return f, spec, after

    async def search(
        self,
        filter: Filter | None = None,
        order: OrderArg = None,
        limit: int | None = None,
        page_key: str | None = None,
    ) -> Page[T]:
        f, spec, after = self._prepare_search(filter, order, page_key)
        if limit is None:
            limit = self.default_limit
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
            raise ValidationError("limit must be a positive integer", field="limit")
        if f is NONE:
            return Page([], None)
        items = await self._collect(f, spec, after, limit + 1)
        if len(items) > limit:
            items = items[:limit]
            return Page(items, self.pages.encode(self.meta, spec, sort_values(items[-1], spec)))
        return Page(items, None)

    async def _collect(
        self, f: Filter, spec: Sort, after: Sequence[Any] | None, limit: int | None
    ) -> list[T]:
        if self.finds_residual:
            return await self._find(f, spec, after, limit)
        plan = self._plan(f, spec)
        native = plan.native
        if plan.residual is ALL:
            return await self._find(native, spec, after, limit)
        keep = compile_filter(plan.residual, self.meta)
        chunk = max(100, 4 * (limit or 0)) if limit is not None else None
        result: list[T] = []
        while True:
            raw = await self._find(native, spec, after, chunk)
            result.extend(i for i in raw if keep(i))
            if chunk is None or len(raw) < chunk:
                break
            if limit is not None and len(result) >= limit:
                break
            after = sort_values(raw[-1], spec)
        return result if limit is None else result[:limit]

    async def count(self, filter: Filter | None = None) -> int:
        f = validate_filter(filter, self.meta)
        if self.meta.expires is not None:
            now = self.clock()
            if self._expiry_indexed and f is not NONE and type(now) is dt.datetime and now.tzinfo:
                # the matching items less the expired ones still stored: a count of ``f``
                # and one of an index range, instead of testing every row's expiry
                expired = And.of(f, Compare(self.meta.expires, Op.LTE, now))
                spec = sort_spec(self.meta, None)
                plan = self._plan(f, spec)
                plan_expired = self._plan(expired, spec)
                if plan.residual is ALL and plan_expired.residual is ALL:
                    total = await self._count(plan.native)
                    return max(0, total - await self._count(plan_expired.native))
            f = self._live(f)
        if f is NONE:
            return 0
        if self.finds_residual:
            return await self._count(f)
        spec = sort_spec(self.meta, None)
        plan = self._plan(f, spec)
        if plan.residual is ALL:
            return await self._count(plan.native)
        return len(await self._collect(f, spec, None, None))

    async def read_batch(self, keys: Sequence[str]) -> list[T | None]:
        if isinstance(keys, str):
            raise ValidationError("read_batch takes a list of keys")
        parsed = [self.meta.parse_key(k) for k in keys]
        found = await self._get_many(parsed)
        if self.meta.expires is not None:
            now = self.clock()
            return [None if f is None or self._expired(f[0], now) else f[0] for f in found]
        return [None if f is None else f[0] for f in found]

    async def explain(self, filter: Filter | None = None, order: OrderArg = None) -> Explain:
        f, spec, _ = self._prepare_search(filter, order, None)
        plan = self._plan(f, spec)
        return Explain(
            plan.native,
            plan.residual,
            plan.ordered,
            plan.detail or self._describe(plan.native, spec),
        )
