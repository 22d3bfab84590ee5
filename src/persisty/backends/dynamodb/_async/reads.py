"""DynamoDB item reads (async): GetItem, BatchGetItem, sequences, the store's state.

The sync twin ``_sync/reads.py`` is generated from this file by ``scripts/generate_sync.py``;
edit this file, never the twin.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import botocore.exceptions

from persisty.backends.dynamodb._clients import AsyncClient, backoff, client_error
from persisty.backends.dynamodb._codec import PK, SK, Codec
from persisty.model import StoreMeta
from persisty.query import sort_spec
from persisty.store import AsyncStoreBase, Key

if TYPE_CHECKING:
    from persisty.backends.dynamodb._async.database import AsyncDynamoDatabase


BATCH_GET = 100
BATCH_WRITE = 25


def _raw_key(item: dict[str, Any]) -> tuple[bytes, bytes]:
    sk = item.get(SK)
    return item[PK]["S"].encode(), bytes(sk["B"]) if sk is not None else b""


async def get_across(
    groups: Sequence[tuple[AsyncDynamoReads, Sequence[Key]]],
) -> list[list[tuple[Any, str] | None]]:
    """The stored items (and etags) of each store's keys, read with ``BatchGetItem``
    requests over all the stores' tables at once (100 keys a request, consistent reads,
    unprocessed keys asked again). The stores share one database's client."""
    wanted: list[tuple[AsyncDynamoReads, tuple[bytes, bytes], dict[str, Any]]] = []
    seen: set[tuple[str, tuple[bytes, bytes]]] = set()
    for store, keys in groups:
        if keys:
            await store._prepare()
        for k in keys:
            av = store.codec.key_av(k)
            raw = _raw_key(av)
            if (store.table, raw) not in seen:
                seen.add((store.table, raw))
                wanted.append((store, raw, av))
    found: dict[tuple[str, tuple[bytes, bytes]], dict[str, Any]] = {}
    names = {s.table: s.meta.name for s, _ in groups}
    for start in range(0, len(wanted), BATCH_GET):
        request: dict[str, Any] = {}
        for store, _, av in wanted[start : start + BATCH_GET]:
            request.setdefault(store.table, {"Keys": [], "ConsistentRead": True})["Keys"].append(av)
        client = wanted[start][0].client
        attempt = 0
        while request:
            try:
                out = await client.call("batch_get_item", RequestItems=request)
            except botocore.exceptions.ClientError as e:
                raise client_error(e, ", ".join(names[t] for t in request)) from e
            for table, items in out.get("Responses", {}).items():
                for raw in items:
                    found[(table, _raw_key(raw))] = raw
            request = out.get("UnprocessedKeys") or {}
            if request:
                await client.sleep(backoff(attempt))
                attempt += 1
    result: list[list[tuple[Any, str] | None]] = []
    for store, keys in groups:
        row: list[tuple[Any, str] | None] = []
        for k in keys:
            item = found.get((store.table, _raw_key(store.codec.key_av(k))))
            row.append(None if item is None else store.codec.load(item))
        result.append(row)
    return result


async def write_batches(
    client: AsyncClient, table: str, requests: Sequence[dict[str, Any]], what: str
) -> None:
    """``requests`` (PutRequest / DeleteRequest) on ``table`` by BatchWriteItem in 25s,
    unprocessed items sent again after a backoff."""
    for start in range(0, len(requests), BATCH_WRITE):
        pending: dict[str, Any] = {table: list(requests[start : start + BATCH_WRITE])}
        attempt = 0
        while pending:
            try:
                out = await client.call("batch_write_item", RequestItems=pending)
            except botocore.exceptions.ClientError as e:
                raise client_error(e, what) from e
            pending = out.get("UnprocessedItems") or {}
            if pending:
                await client.sleep(backoff(attempt))
                attempt += 1


async def read_stores(
    database: AsyncDynamoDatabase, groups: Sequence[tuple[Any, Sequence[str]]]
) -> list[list[Any]]:
    """What ``db.read_batch`` does on DynamoDB: the database's own stores' keys in one
    run of ``BatchGetItem`` requests; any other store through its ``read_batch``."""
    own = {id(s) for s in database._stores.values()}
    mine = [
        (n, store, [store.meta.parse_key(k) for k in keys])
        for n, (store, keys) in enumerate(groups)
        if id(store) in own and isinstance(store, AsyncDynamoReads)
    ]
    result: list[list[Any]] = [[] for _ in groups]
    got = await get_across([(store, keys) for _, store, keys in mine])
    for (n, store, _), found in zip(mine, got, strict=True):
        now = store.clock() if store.meta.expires is not None else None
        result[n] = [
            None if f is None or (now is not None and store._expired(f[0], now)) else f[0]
            for f in found
        ]
    done = {n for n, _, _ in mine}
    for n, (store, keys) in enumerate(groups):
        if n not in done:
            result[n] = await store.read_batch(keys)
    return result


class AsyncDynamoReads(AsyncStoreBase[Any]):
    """The first layer of :class:`AsyncDynamoStore`: its state, item reads and sequences
    (``writes.py`` adds the writes, ``search.py`` queries and scans, ``store.py`` the
    table)."""

    def __init__(
        self, meta: StoreMeta, pages: Any, database: AsyncDynamoDatabase, table: str
    ) -> None:
        super().__init__(meta, pages)
        self.database = database
        self.client = database.client
        self.table = table
        self.codec = Codec(meta)
        self.max_sort = database.max_sort
        self.segments = database.segments
        self._uniques = [(i, ix) for i, ix in enumerate(meta.indexes) if ix.unique]
        self._needs_meta = bool(self._uniques) or any(a.generated == "sequence" for a in meta.attrs)
        self._key_order = sort_spec(meta, None)
        # a condition expression checks etags, but unique markers need the stored item
        self.checks_expected = not self._uniques

    async def _get(self, key: Key) -> tuple[Any, str] | None:
        await self._prepare()
        try:
            out = await self.client.call(
                "get_item", TableName=self.table, Key=self.codec.key_av(key), ConsistentRead=True
            )
        except botocore.exceptions.ClientError as e:
            raise client_error(e, self.meta.name) from e
        raw = out.get("Item")
        return None if raw is None else self.codec.load(raw)

    async def _get_many(self, keys: Sequence[Key]) -> list[tuple[Any, str] | None]:
        return (await get_across([(self, keys)]))[0]

    async def _call(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        try:
            return await self.client.call(operation, **params)
        except botocore.exceptions.ClientError as e:
            raise client_error(e, self.meta.name) from e

    async def _next_sequence(self, attr: str) -> int:
        return await self.database.next_sequence(f"{self.meta.name}|{attr}")

    async def _skip_sequence(self, attr: str, by: int) -> None:
        await self.database.next_sequence(f"{self.meta.name}|{attr}", by)
