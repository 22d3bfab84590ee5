"""DynamoDB search and count (async): Query, parallel Scan segments, Python sort within bounds.

The sync twin ``_sync/search.py`` is generated from this file by ``scripts/generate_sync.py``;
edit this file, never the twin.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from persisty.backends.dynamodb._async.native import AsyncDynamoNative
from persisty.backends.dynamodb._codec import order_bytes
from persisty.backends.dynamodb._plan import Plan as Access
from persisty.backends.dynamodb._plan import make_plan
from persisty.errors import ValidationError
from persisty.query import ALL, Filter, Sort, compile_filter, seek, validate_filter
from persisty.store import Plan, check_changes, delete_keys_async, patch_keys_async


class AsyncDynamoSearch(AsyncDynamoNative):
    """The queries of :class:`AsyncDynamoStore`: Query on a partition key, parallel Scan
    segments otherwise, counts by ``Select=COUNT``, and ``update_all`` / ``delete_all``."""

    def _plan(self, f: Filter, spec: Sort) -> Plan:
        plan = make_plan(f, spec, self.meta)
        return Plan(plan.native, plan.residual, plan.ordered, "dynamodb " + plan.description)

    async def _find(
        self, f: Filter, spec: Sort, after: Sequence[Any] | None, limit: int | None
    ) -> list[Any]:
        return await self._run(f, spec, after, limit)

    async def _run(
        self, f: Filter, spec: Sort, after: Sequence[Any] | None, limit: int | None
    ) -> list[Any]:
        """Items matching the validated filter ``f`` in ``spec`` order after ``after``."""
        plan = make_plan(f, spec, self.meta)
        if plan.kind == "none":
            return []
        await self._prepare()
        if plan.kind == "get":
            keep = compile_filter(plan.residual, self.meta)
            rows = await self._get_many(plan.keys)
            return seek([r[0] for r in rows if r is not None and keep(r[0])], spec, after, limit)
        if plan.kind == "query" and plan.ordered and limit is not None:
            return await self._stream(plan, spec, after, limit)
        items = await self._all(plan, self.max_sort if limit is not None else None)
        return seek(items, spec, after, limit)

    def _params(self, plan: Access) -> dict[str, Any]:
        params: dict[str, Any] = {"TableName": self.table}
        names: dict[str, str] = {}
        values: dict[str, Any] = {}
        if plan.filter_text is not None:
            params["FilterExpression"] = plan.filter_text
            names.update(plan.expr.names)
            values.update(plan.expr.values)
        if plan.kind == "query":
            if plan.index is not None:
                params["IndexName"] = plan.index
            else:
                params["ConsistentRead"] = True
            params["ScanIndexForward"] = not plan.desc
        else:
            params["ConsistentRead"] = True
        if names:
            params["ExpressionAttributeNames"] = names
        if values:
            params["ExpressionAttributeValues"] = values
        return params

    def _query_params(
        self, plan: Access, after_value: Any = None, use_after: bool = False
    ) -> dict[str, Any] | None:
        params = self._params(plan)
        condition = plan.key_condition(after_value, use_after)
        if condition is None:
            return None
        text, extra = condition
        params["KeyConditionExpression"] = text
        params["ExpressionAttributeNames"] = {
            **params.get("ExpressionAttributeNames", {}),
            **extra["ExpressionAttributeNames"],
        }
        params["ExpressionAttributeValues"] = {
            **params.get("ExpressionAttributeValues", {}),
            **extra["ExpressionAttributeValues"],
        }
        return params

    async def _stream(
        self, plan: Access, spec: Sort, after: Sequence[Any] | None, limit: int
    ) -> list[Any]:
        """Query pages in the sort key's order until ``limit`` items after ``after`` are
        certain (ties on the sort key are ordered in Python per complete group)."""
        sk = plan.sk_field
        names = [a for a, _ in spec]
        use_after = after is not None and sk is not None and sk in names
        after_value = after[names.index(sk)] if use_after and after is not None and sk else None
        found = self._query_params(plan, after_value, use_after)
        if found is None:
            return []
        params = found
        keep = None if plan.residual is ALL else compile_filter(plan.residual, self.meta)
        page_limit: int | None = None
        if plan.filter_text is None and keep is None:
            # the limit, one more to see that the last group of ties is complete, and the
            # cursor's own item (the key condition includes its sort value)
            page_limit = min(1000, limit + (2 if use_after else 1))
        collected: list[Any] = []
        load = self.codec.load
        while True:
            if page_limit is not None:
                params["Limit"] = page_limit
            out = await self._call("query", params)
            rows = [load(r)[0] for r in out.get("Items", [])]
            collected += rows if keep is None else [r for r in rows if keep(r)]
            start = out.get("LastEvaluatedKey")
            if start is None:
                break
            params["ExclusiveStartKey"] = start
            if sk is None:
                continue
            if rows:
                last = order_bytes(getattr(rows[-1], sk))
                complete = [x for x in collected if order_bytes(getattr(x, sk)) != last]
                if len(seek(complete, spec, after, limit)) >= limit:
                    break
            if page_limit is not None:
                page_limit = min(1000, page_limit * 2)
        return seek(collected, spec, after, limit)

    async def _all(self, plan: Access, bound: int | None) -> list[Any]:
        """Every item the plan's Query or Scan returns that passes the residual filter;
        more than ``bound`` is a ``ValidationError`` (they would all be sorted in Python)."""
        raws = await self._scan_raw(plan, bound)
        keep = None if plan.residual is ALL else compile_filter(plan.residual, self.meta)
        load = self.codec.load
        items = [load(r)[0] for r in raws]
        if keep is not None:
            items = [i for i in items if keep(i)]
        if bound is not None and len(items) > bound:
            self._too_many(bound)
        return items

    def _too_many(self, bound: int) -> None:
        raise ValidationError(
            f"{self.meta.name}: more than {bound:,} matches would have to be sorted in "
            "Python (the order is not the sort key of an index used by the filter); narrow "
            "the filter, order by the index's sort key, or raise max_sort",
            field="order",
        )

    async def _scan_raw(self, plan: Access | None, bound: int | None) -> list[dict[str, Any]]:
        if plan is not None and plan.kind == "query":
            found = self._query_params(plan)
            if found is None:
                return []
            params = found
            out_items: list[dict[str, Any]] = []
            while True:
                out = await self._call("query", params)
                out_items += out.get("Items", [])
                if bound is not None and plan.residual is ALL and len(out_items) > bound:
                    self._too_many(bound)
                start = out.get("LastEvaluatedKey")
                if start is None:
                    return out_items
                params["ExclusiveStartKey"] = start
        base = (
            self._params(plan)
            if plan is not None
            else {"TableName": self.table, "ConsistentRead": True}
        )
        total = self.segments
        parts = await self.client.gather(
            [
                lambda s=s: self._segment(base, s, total, bound)  # type: ignore[misc]
                for s in range(total)
            ]
        )
        return [r for part in parts for r in part]

    async def _segment(
        self, base: dict[str, Any], segment: int, total: int, bound: int | None
    ) -> list[dict[str, Any]]:
        params = dict(base)
        if total > 1:
            params["Segment"], params["TotalSegments"] = segment, total
        items: list[dict[str, Any]] = []
        while True:
            out = await self._call("scan", params)
            items += out.get("Items", [])
            if bound is not None and len(items) > bound and "FilterExpression" not in base:
                pass  # the residual may still drop items; _all checks the total
            start = out.get("LastEvaluatedKey")
            if start is None:
                return items
            params["ExclusiveStartKey"] = start

    async def _count(self, f: Filter) -> int:
        plan = make_plan(f, self._key_order, self.meta)
        if plan.kind == "none":
            return 0
        await self._prepare()
        if plan.kind == "get" or plan.residual is not ALL:
            return len(await self._run(f, self._key_order, None, None))
        if plan.kind == "query":
            found = self._query_params(plan)
            if found is None:
                return 0
            params = found
            params["Select"] = "COUNT"
            total = 0
            while True:
                out = await self._call("query", params)
                total += int(out.get("Count", 0))
                start = out.get("LastEvaluatedKey")
                if start is None:
                    return total
                params["ExclusiveStartKey"] = start
        base = self._params(plan)
        base["Select"] = "COUNT"
        counts = await self.client.gather(
            [lambda s=s: self._count_segment(base, s) for s in range(self.segments)]  # type: ignore[misc]
        )
        return sum(counts)

    async def _count_segment(self, base: dict[str, Any], segment: int) -> int:
        params = dict(base)
        if self.segments > 1:
            params["Segment"], params["TotalSegments"] = segment, self.segments
        total = 0
        while True:
            out = await self._call("scan", params)
            total += int(out.get("Count", 0))
            start = out.get("LastEvaluatedKey")
            if start is None:
                return total
            params["ExclusiveStartKey"] = start

    async def _matching_keys(self, f: Filter) -> list[str]:
        plan = make_plan(f, self._key_order, self.meta)
        if plan.kind == "none":
            return []
        await self._prepare()
        if plan.kind == "get":
            items = await self._run(f, self._key_order, None, None)
        else:
            items = await self._all(plan, None)
        return [self.meta.key_of(i) for i in items]

    async def update_all(self, filter: Filter | None, changes: Any) -> int:
        changes = check_changes(self.meta, changes)
        f = self._live(validate_filter(filter, self.meta))
        keys = await self._matching_keys(f)
        return await patch_keys_async(self, keys, changes, f)

    async def delete_all(self, filter: Filter | None) -> int:
        f = self._live(validate_filter(filter, self.meta))
        keys = await self._matching_keys(f)
        return await delete_keys_async(self, keys, None if f is ALL else f)
