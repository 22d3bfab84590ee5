"""DynamoDB item reads (async): GetItem, BatchGetItem, sequences, the store's state.

The sync twin ``_sync/reads.py`` is generated from this file by ``scripts/generate_sync.py``;
edit this file, never the twin.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import botocore.exceptions

from persisty.backends.dynamodb._clients import backoff, client_error
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
        if not keys:
            return []
        await self._prepare()
        wanted: dict[tuple[bytes, bytes], dict[str, Any]] = {}
        for k in keys:
            av = self.codec.key_av(k)
            wanted.setdefault(_raw_key(av), av)
        found: dict[tuple[bytes, bytes], dict[str, Any]] = {}
        todo = list(wanted.values())
        for start in range(0, len(todo), BATCH_GET):
            request: dict[str, Any] = {
                self.table: {"Keys": todo[start : start + BATCH_GET], "ConsistentRead": True}
            }
            attempt = 0
            while request:
                try:
                    out = await self.client.call("batch_get_item", RequestItems=request)
                except botocore.exceptions.ClientError as e:
                    raise client_error(e, self.meta.name) from e
                for raw in out.get("Responses", {}).get(self.table, []):
                    found[_raw_key(raw)] = raw
                request = out.get("UnprocessedKeys") or {}
                if request:
                    await self.client.sleep(backoff(attempt))
                    attempt += 1
        result: list[tuple[Any, str] | None] = []
        for k in keys:
            raw = found.get(_raw_key(self.codec.key_av(k)))
            result.append(None if raw is None else self.codec.load(raw))
        return result

    async def _call(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        try:
            return await self.client.call(operation, **params)
        except botocore.exceptions.ClientError as e:
            raise client_error(e, self.meta.name) from e

    async def _next_sequence(self, attr: str) -> int:
        return await self.database.next_sequence(f"{self.meta.name}|{attr}")

    async def _skip_sequence(self, attr: str, by: int) -> None:
        await self.database.next_sequence(f"{self.meta.name}|{attr}", by)
