"""The DynamoDB database (async): the client, the meta table, migrate, drop, footprint.

The sync twin ``_sync/database.py`` is generated from this file by ``scripts/generate_sync.py``;
edit this file, never the twin.
"""

from __future__ import annotations

import asyncio
from typing import Any

import botocore.exceptions

from persisty.backends.dynamodb._async.commit import commit_stores
from persisty.backends.dynamodb._async.reads import read_stores, write_batches
from persisty.backends.dynamodb._async.store import AsyncDynamoStore
from persisty.backends.dynamodb._clients import (
    META_KEY,
    AsyncClient,
    client_error,
    error_code,
    load_secret,
    meta_definition,
    parse_url,
)
from persisty.errors import PersistyError, Unavailable, ValidationError
from persisty.model import StoreMeta, meta_of
from persisty.store import AsyncDatabase, AsyncStore, AsyncStoreBase, WriteOp

DEFAULT_MAX_SORT = 10_000
DEFAULT_SEGMENTS = 4
DEFAULT_PREFIX = "persisty"


class AsyncDynamoDatabase(AsyncDatabase):
    """``dynamodb://?region=…&endpoint_url=…&prefix=persisty``: stores on DynamoDB through
    aiobotocore (sync: botocore), or the standard AWS environment (``AWS_ENDPOINT_URL``,
    ``AWS_DEFAULT_REGION``, credentials …) when the URL names nothing.

    Each store is a table ``<prefix>.<namespace>.<store>`` (``_`` without a namespace),
    created on first use or by :meth:`migrate`. The table ``<prefix>._meta`` keeps the
    page-key secret, sequences and the markers that make unique indexes unique. Options
    (URL query or keyword): ``region``, ``endpoint_url``, ``prefix``, ``profile``,
    ``max_sort`` (most items sorted in Python for one search, default 10,000) and
    ``segments`` (parallel Scan segments, default 4).

    Example::

        db = persisty.aio.connect("dynamodb://?region=eu-west-1", namespace="tenant1")
        notes = db.store(Note)
        await db.migrate()
        await db.close()
    """

    def __init__(
        self,
        url: str = "dynamodb://",
        *,
        namespace: str | None = None,
        secret: bytes | str | None = None,
        **options: Any,
    ) -> None:
        parsed = parse_url(url)
        parsed.update({k: str(v) for k, v in options.items() if v is not None})
        self.options = parsed
        self.prefix = parsed.get("prefix") or DEFAULT_PREFIX
        if not all(c.isalnum() or c in "_-" for c in self.prefix) or len(self.prefix) > 60:
            raise ValidationError(f"invalid table prefix {self.prefix!r}", field="prefix")
        try:
            self.max_sort = int(parsed.get("max_sort", DEFAULT_MAX_SORT))
            self.segments = max(1, int(parsed.get("segments", DEFAULT_SEGMENTS)))
        except ValueError as e:
            raise ValidationError(f"max_sort and segments take integers ({e})", field="url") from e
        self.meta_table = f"{self.prefix}._meta"
        self.client = AsyncClient(parsed)
        self._meta_ready = False
        self._meta_lock = asyncio.Lock()
        super().__init__(url, namespace=namespace, secret=secret)

    async def _commit_stores(
        self, groups: list[tuple[AsyncStoreBase[Any], list[WriteOp]]]
    ) -> list[list[PersistyError | None]]:
        return await commit_stores(groups)

    async def _read_stores(
        self, groups: list[tuple[AsyncStore[Any], list[str]]]
    ) -> list[list[Any]]:
        return await read_stores(self, groups)

    @property
    def table_prefix(self) -> str:
        """The start of the name of every table of this namespace."""
        return f"{self.prefix}.{self.namespace or '_'}."

    def _secret(self) -> bytes | None:
        return load_secret(self.options, self.meta_table)

    def _open(self, meta: StoreMeta) -> AsyncStore[Any]:
        return AsyncDynamoStore(meta, self.pages, self, self.table_prefix + meta.name)

    def marker_key(self, store: str, index: str, raw: bytes) -> str:
        """The meta-table key that reserves one unique value."""
        return f"u|{self.namespace or '_'}|{store}|{index}|{raw.hex()}"

    async def wait_active(self, table: str) -> dict[str, Any]:
        """Wait until ``table`` and its GSIs are ACTIVE; return its description."""
        for attempt in range(600):
            try:
                out: dict[str, Any] = (await self.client.call("describe_table", TableName=table))[
                    "Table"
                ]
            except botocore.exceptions.ClientError as e:
                if error_code(e) != "ResourceNotFoundException":
                    raise client_error(e, table) from e
                out = {}
            if out.get("TableStatus") == "ACTIVE" and all(
                g.get("IndexStatus", "ACTIVE") == "ACTIVE"
                for g in out.get("GlobalSecondaryIndexes", [])
            ):
                return out
            await self.client.sleep(min(1.0, 0.05 * (attempt + 1)))
        raise Unavailable(f"the DynamoDB table {table} did not become active")

    async def ensure_meta(self) -> list[str]:
        """Create the meta table if it is missing."""
        if self._meta_ready:
            return []
        async with self._meta_lock:
            if self._meta_ready:
                return []
            done = []
            try:
                await self.client.call("describe_table", TableName=self.meta_table)
            except botocore.exceptions.ClientError as e:
                if error_code(e) != "ResourceNotFoundException":
                    raise client_error(e, self.meta_table) from e
                try:
                    await self.client.call("create_table", **meta_definition(self.meta_table))
                    done.append(f"created table {self.meta_table}")
                except botocore.exceptions.ClientError as e2:
                    if error_code(e2) != "ResourceInUseException":
                        raise client_error(e2, self.meta_table) from e2
                await self.wait_active(self.meta_table)
            self._meta_ready = True
            return done

    async def next_sequence(self, name: str, by: int = 1) -> int:
        """The next value of a counter kept in the meta table (atomic ADD of ``by``)."""
        await self.ensure_meta()
        out = await self.client.call(
            "update_item",
            TableName=self.meta_table,
            Key={META_KEY: {"S": f"seq|{self.namespace or '_'}|{name}"}},
            UpdateExpression="ADD #v :one",
            ExpressionAttributeNames={"#v": "v"},
            ExpressionAttributeValues={":one": {"N": str(by)}},
            ReturnValues="UPDATED_NEW",
        )
        return int(out["Attributes"]["v"]["N"])

    async def migrate(self) -> list[str]:
        """Create the missing tables and GSIs of the stores opened so far (on-demand
        billing), wait until they are active, and re-index items for new GSIs; return what
        was done."""
        done = await self.ensure_meta()
        for store in list(self._stores.values()):
            assert isinstance(store, AsyncDynamoStore)
            done += await store.ensure_table()
        return done

    async def drop(self, cls: type[Any] | None = None) -> None:
        """Delete the table of the store of ``cls`` and its meta entries (unique values,
        sequence counters); without ``cls``, every table of this namespace and its meta
        entries.

        Example::

            await db.drop(Note)   # one store
            await db.drop()       # the namespace
        """
        ns = self.namespace or "_"
        if cls is not None:
            store = self.store(cls)
            assert isinstance(store, AsyncDynamoStore)
            stores = [store]
            await self._delete_table(store.table)
            name = store.meta.name
            await self._drop_meta_entries((f"u|{ns}|{name}|", f"seq|{ns}|{name}|"))
        else:
            stores = [s for s in self._stores.values() if isinstance(s, AsyncDynamoStore)]
            for table in await self._tables():
                if table.startswith(self.table_prefix):
                    await self._delete_table(table)
            await self._drop_meta_entries((f"u|{ns}|", f"seq|{ns}|"))
        for s in stores:
            s._unprepare()

    async def footprint(self, cls: type[Any] | None = None) -> list[str]:
        """The tables and meta entries of the store of ``cls`` (else of the namespace)."""
        ns = self.namespace or "_"
        if cls is None:
            table_prefix, prefixes = self.table_prefix, (f"u|{ns}|", f"seq|{ns}|")
        else:
            name = meta_of(cls).name
            table_prefix = self.table_prefix + name
            prefixes = (f"u|{ns}|{name}|", f"seq|{ns}|{name}|")
        found = [
            t
            for t in await self._tables()
            if (t == table_prefix if cls is not None else t.startswith(table_prefix))
        ]
        return found + await self._meta_entries(prefixes)

    async def _tables(self) -> list[str]:
        """The names of all the tables the endpoint lists (100 a page)."""
        names: list[str] = []
        params: dict[str, Any] = {"Limit": 100}
        while True:
            out = await self.client.call("list_tables", **params)
            names += out.get("TableNames", [])
            start = out.get("LastEvaluatedTableName")
            if not start:
                return names
            params["ExclusiveStartTableName"] = start

    async def _delete_table(self, name: str) -> None:
        try:
            await self.client.call("delete_table", TableName=name)
        except botocore.exceptions.ClientError as e:
            if error_code(e) != "ResourceNotFoundException":
                raise client_error(e, name) from e

    async def _meta_entries(self, prefixes: tuple[str, str]) -> list[str]:
        params: dict[str, Any] = {
            "TableName": self.meta_table,
            "FilterExpression": "begins_with(#k, :u) OR begins_with(#k, :s)",
            "ExpressionAttributeNames": {"#k": META_KEY},
            "ExpressionAttributeValues": {":u": {"S": prefixes[0]}, ":s": {"S": prefixes[1]}},
        }
        names: list[str] = []
        while True:
            try:
                out = await self.client.call("scan", **params)
            except botocore.exceptions.ClientError as e:
                if error_code(e) == "ResourceNotFoundException":
                    return []
                raise client_error(e, self.meta_table) from e
            names += [i[META_KEY]["S"] for i in out.get("Items", [])]
            start = out.get("LastEvaluatedKey")
            if start is None:
                return names
            params["ExclusiveStartKey"] = start

    async def _drop_meta_entries(self, prefixes: tuple[str, str]) -> None:
        names = await self._meta_entries(prefixes)
        requests = [{"DeleteRequest": {"Key": {META_KEY: {"S": name}}}} for name in names]
        await write_batches(self.client, self.meta_table, requests, self.meta_table)

    async def close(self) -> None:
        """Close the HTTP connections."""
        await self.client.close()
