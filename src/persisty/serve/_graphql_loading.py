"""How GraphQL resolvers load items: one batched read per store and level of a query, and a
middleware that gives the event loop back while a large result is resolved."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from starlette.requests import Request

from persisty.query import Compare, Op
from persisty.serve._api import Api, Served

Info = Any


class Loader:
    """Batches the reads of one request's resolvers: keys asked for in the same tick of the
    event loop are read with one ``read_batch`` (one per store and level of the query)."""

    def __init__(self, load: Callable[[list[str]], Any]) -> None:
        self.load = load
        self.pending: dict[str, list[asyncio.Future[Any]]] = {}
        self.loaded: dict[str, Any] = {}  # a key read once in a request is not read again
        self.scheduled = False

    def get(self, key: str) -> Any:
        """The loaded value of ``key`` when it is known (no task, no future: large results
        stay cheap), else a future of it."""
        if key in self.loaded:
            return self.loaded[key]
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()
        self.pending.setdefault(key, []).append(fut)
        if not self.scheduled:
            self.scheduled = True
            loop.call_soon(lambda: asyncio.ensure_future(self._dispatch()))
        return fut

    async def _dispatch(self) -> None:
        pending, self.pending, self.scheduled = self.pending, {}, False
        keys = list(pending)
        try:
            items = await self.load(keys)
        except Exception as e:  # delivered to every waiting resolver
            for futs in pending.values():
                for f in futs:
                    if not f.done():
                        f.set_exception(e)
            return
        woken = 0
        for k, item in zip(keys, items, strict=True):
            self.loaded[k] = item
            for f in pending[k]:
                if not f.done():
                    f.set_result(item)
                    woken += 1
                    if woken % WAKE_AT_ONCE == 0:  # wake waiters a slice at a time, so
                        await asyncio.sleep(0)  # other requests get the loop in between


class Context:
    def __init__(self, api: Api, request: Request) -> None:
        self.api = api
        self.request = request
        self.loaders: dict[str, Loader] = {}

    def store(self, served: Served) -> Any:
        return self.api.store(self.request, served)

    def loader(self, served: Served) -> Loader:
        found = self.loaders.get(served.name)
        if found is None:
            store = self.store(served)
            found = self.loaders[served.name] = Loader(store.read_batch)
        return found


WAKE_AT_ONCE = 100
"""Resolvers a loaded batch wakes in one turn of the event loop."""

DEFAULT_PAGE = 100
"""How many items a search gives without a ``limit`` (the stores' default page)."""

DEFAULT_CHILDREN = 20
"""How many children a has-many field gives without a ``limit``."""


def children_loader(
    store: Any, parent: Served, attr: str, limit: int, one: bool = False
) -> Callable[[list[str]], Any]:
    """Loads at most ``limit`` children per parent key: one search for all the parents
    (limited to what they may have together), one limited search per parent only when that
    one did not hold them all."""

    async def load(keys: list[str]) -> list[Any]:
        found = await load_lists(keys)
        return [(f[0] if f else None) for f in found] if one else found

    async def load_lists(keys: list[str]) -> list[list[Any]]:
        values = [parent.meta.parse_key(k)[0] for k in keys]
        cap = len(values) * limit
        page = await store.search(Compare(attr, Op.IN, tuple(values)), None, cap)
        found: dict[Any, list[Any]] = {}
        for child in page.items:
            found.setdefault(getattr(child, attr), []).append(child)
        if page.next_page_key is None:
            return [found.get(v, [])[:limit] for v in values]
        pages = await asyncio.gather(
            *(store.search(Compare(attr, Op.EQ, v), None, limit) for v in values)
        )
        return [list(p.items) for p in pages]

    return load
