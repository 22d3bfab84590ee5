"""The DynamoDB store (async): its table and GSIs, over the reads, writes and search layers.

The sync twin ``_sync/store.py`` is generated from this file by ``scripts/generate_sync.py``;
edit this file, never the twin.
"""

from __future__ import annotations

from typing import Any

import botocore.exceptions

from persisty.backends.dynamodb._async.search import AsyncDynamoSearch
from persisty.backends.dynamodb._clients import client_error, error_code
from persisty.backends.dynamodb._codec import PK, SK, TTL
from persisty.model import StoreMeta


def table_definition(name: str, meta: StoreMeta) -> dict[str, Any]:
    """CreateTable arguments: key config -> (partition, sort) key, each index -> a GSI."""
    attrs = [{"AttributeName": PK, "AttributeType": "S"}]
    schema = [{"AttributeName": PK, "KeyType": "HASH"}]
    if len(meta.key.attrs) > 1:
        attrs.append({"AttributeName": SK, "AttributeType": "B"})
        schema.append({"AttributeName": SK, "KeyType": "RANGE"})
    gsis = []
    for i, _ in enumerate(meta.indexes):
        gsi = gsi_definition(meta, i)
        gsis.append(gsi)
        attrs += [
            {"AttributeName": k["AttributeName"], "AttributeType": "B"} for k in gsi["KeySchema"]
        ]
    out: dict[str, Any] = {
        "TableName": name,
        "AttributeDefinitions": attrs,
        "KeySchema": schema,
        "BillingMode": "PAY_PER_REQUEST",
    }
    if gsis:
        out["GlobalSecondaryIndexes"] = gsis
    return out


def gsi_definition(meta: StoreMeta, i: int) -> dict[str, Any]:
    """The GSI of ``meta.indexes[i]``: first attribute -> partition, second -> sort key."""
    ix = meta.indexes[i]
    schema = [{"AttributeName": f"~p{i}", "KeyType": "HASH"}]
    if len(ix.attrs) > 1:
        schema.append({"AttributeName": f"~s{i}", "KeyType": "RANGE"})
    return {
        "IndexName": ix.index_name(meta.name),
        "KeySchema": schema,
        "Projection": {"ProjectionType": "ALL"},
    }


class AsyncDynamoStore(AsyncDynamoSearch):
    """A Store on one DynamoDB table: the key config is the table's partition key (and sort
    key for composite keys), each declared index a GSI (first attribute the partition key,
    second the sort key). The table is created on first use.

    An equality on a partition key (the table's or a GSI's) runs as a Query, with ranges and
    ``startswith`` on its sort key in the KeyConditionExpression; every other expressible
    term goes to the FilterExpression; the rest (case-insensitive ops, ``endswith``, text
    queries, values DynamoDB cannot hold) is evaluated in Python. Without a partition
    equality the table is read by parallel Scan segments. Ordering by the sort key of the
    access path is native; any other order sorts the matches in Python, at most
    ``max_sort`` of them (more is a ``ValidationError``, never a silent truncation).

    Example::

        db = persisty.aio.connect("dynamodb://?region=us-east-1", namespace="app")
        notes = db.store(Note)
        page = await notes.search(F.owner == "ann", order=[-F.priority], limit=20)
    """

    reclaims_natively = True  # the table's TimeToLive attribute
    finds_residual = True  # a query or scan filters its pages as they come

    async def ensure_table(self) -> list[str]:
        """Create the table and any missing GSI (on-demand billing) and wait until they are
        active; return what was done."""
        self._unprepare()
        return await self._prepare()

    async def _setup(self) -> list[str]:
        done: list[str] = []
        if self._needs_meta:
            done += await self.database.ensure_meta()
        try:
            described = await self._describe_table()
        except botocore.exceptions.ClientError as e:
            if error_code(e) != "ResourceNotFoundException":
                raise client_error(e, self.meta.name) from e
            try:
                await self.client.call("create_table", **table_definition(self.table, self.meta))
                done.append(f"created table {self.table}")
            except botocore.exceptions.ClientError as e2:
                if error_code(e2) != "ResourceInUseException":
                    raise client_error(e2, self.meta.name) from e2
            described = await self.database.wait_active(self.table)
            if self.meta.expires is not None:
                # native reclaim; reads filter what its lag leaves behind
                await self.client.call(
                    "update_time_to_live",
                    TableName=self.table,
                    TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL},
                )
                done.append(f"enabled TTL on {TTL} of {self.table}")
        have = {g["IndexName"] for g in described.get("GlobalSecondaryIndexes", [])}
        for i, ix in enumerate(self.meta.indexes):
            name = ix.index_name(self.meta.name)
            if name in have:
                continue
            gsi = gsi_definition(self.meta, i)
            await self.client.call(
                "update_table",
                TableName=self.table,
                AttributeDefinitions=[
                    {"AttributeName": k["AttributeName"], "AttributeType": "B"}
                    for k in gsi["KeySchema"]
                ],
                GlobalSecondaryIndexUpdates=[{"Create": gsi}],
            )
            await self.database.wait_active(self.table)
            done.append(f"created GSI {name} on {self.table}")
        if any(d.startswith("created GSI") for d in done):
            done += await self._backfill()
        return done

    async def _describe_table(self) -> dict[str, Any]:
        out = await self.client.call("describe_table", TableName=self.table)
        table: dict[str, Any] = out["Table"]
        return table

    async def _backfill(self) -> list[str]:
        """Rewrite every item so that it carries the keys of GSIs added after it was
        written (items are re-encoded from their stored values; etags are kept)."""
        raws = await self._scan_raw(None, None)
        rows = [self.codec.dump(*self.codec.load(r)) for r in raws]
        await self._batch_write([{"PutRequest": {"Item": r}} for r in rows])
        return [f"re-indexed {len(rows)} items of {self.table}"] if rows else []
