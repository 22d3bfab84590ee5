"""Grouped aggregates computed by the SQL engine in one parameterized statement (the sync
twin ``_sync/grouped.py`` is generated from this file)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from persisty.backends.sql._async.store import AsyncSqlStore
from persisty.backends.sql._grouped import SqlAggregate, SqlBucket, grouped_sql
from persisty.query import Filter, validate_filter


class AsyncSqlGroups:
    """``count``/``sum``/``min``/``max`` of a SQL store's live items matching a filter,
    optionally grouped by int buckets, in one ``SELECT … GROUP BY`` (one consistent
    snapshot). Names come from the model, values travel as parameters.

    Example::

        groups = AsyncSqlGroups(db.store(Point))
        rows = await groups.rows(
            F.series == "cpu",
            [SqlAggregate("count"), SqlAggregate("max", "value", number="float")],
            bucket=SqlBucket("t", origin=0, width=60),
        )  # [(bucket index, count, max), …] in bucket order
    """

    def __init__(self, store: AsyncSqlStore) -> None:
        self.store = store

    async def rows(
        self,
        filter: Filter | None,
        aggregates: Sequence[SqlAggregate],
        *,
        bucket: SqlBucket | None = None,
    ) -> list[tuple[Any, ...]]:
        """One row per non-empty bucket (``(index, *aggregates)``, in index order), or the
        one row ``(*aggregates,)`` without ``bucket``."""
        store: Any = self.store
        f = validate_filter(filter, store.meta)
        if store.meta.expires is not None:
            f = store._live(f)
        sql, params = grouped_sql(store.schema, f, tuple(aggregates), bucket)
        return [tuple(r) for r in await store._query(sql, params)]
