"""A GraphQL executor that shares the event loop while it completes long lists.

graphql-core completes a list synchronously: once a search has returned 1,000 items, every
field of every item is resolved in one turn of the event loop, and a REST request arriving
meanwhile waits for all of it. This executor completes a long list ``LIST_SLICE`` items at a
time and gives the loop back between slices, so other requests are answered within a slice's
time (and the GraphQL timeout can stop the query between two slices)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from graphql import GraphQLOutputType, GraphQLResolveInfo
from graphql.execution import Executor
from graphql.pyutils import Path

LIST_SLICE = 50
"""List items completed in one turn of the event loop."""


class SharingExecutor(Executor[None]):
    """Completes lists longer than ``LIST_SLICE`` a slice at a time, yielding in between.

    The schema has no ``@stream`` directive, so a list is never streamed; results, errors and
    their paths are the same as graphql-core's own executor gives."""

    def complete_iterable_value(
        self,
        item_type: GraphQLOutputType,
        field_details_list: Any,
        info: GraphQLResolveInfo[Any],
        path: Path,
        items: Iterable[Any],
        position_context: Any,
    ) -> Any:
        if not isinstance(items, list | tuple) or len(items) <= LIST_SLICE:
            return super().complete_iterable_value(
                item_type, field_details_list, info, path, items, position_context
            )
        return self._complete_in_slices(
            item_type, field_details_list, info, path, items, position_context
        )

    async def _complete_in_slices(
        self,
        item_type: GraphQLOutputType,
        field_details_list: Any,
        info: GraphQLResolveInfo[Any],
        path: Path,
        items: list[Any] | tuple[Any, ...],
        position_context: Any,
    ) -> list[Any]:
        completed: list[Any] = []
        pending: list[int] = []  # indices whose completion is still an awaitable
        try:
            for index, item in enumerate(items):
                if index and index % LIST_SLICE == 0:
                    await asyncio.sleep(0)  # other requests get the loop between slices
                item_path = path.add_key(index, None)
                if self.is_awaitable(item):
                    completed.append(
                        self.complete_awaitable_list_item_value(
                            item, item_type, field_details_list, info, item_path, position_context
                        )
                    )
                    pending.append(index)
                elif self.complete_list_item_value(
                    item,
                    completed,
                    item_type,
                    field_details_list,
                    info,
                    item_path,
                    position_context,
                ):
                    pending.append(index)
        except BaseException:
            # a non-null error propagates: the awaitables already started still settle
            started = [completed[i] for i in pending]
            if started:
                self.settle_in_background(started)
            raise
        if pending:
            done = await asyncio.gather(*(completed[i] for i in pending))
            for i, value in zip(pending, done, strict=True):
                completed[i] = value
        return completed
