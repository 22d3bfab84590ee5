"""The DynamoDB backend (``dynamodb://?region=…&endpoint_url=…``) on aiobotocore.

The sync twin ``_sync.py`` is generated from this file by ``scripts/generate_sync.py``
(``AsyncClient`` becomes the botocore ``Client`` of ``_clients.py``); edit this file, never
the twin.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import botocore.exceptions

from persisty.backends.dynamodb._clients import (
    META_KEY,
    AsyncClient,
    backoff,
    client_error,
    error_code,
    load_secret,
    meta_definition,
    parse_url,
)
from persisty.backends.dynamodb._codec import ETAG, PK, SK, TTL, Codec, order_bytes
from persisty.backends.dynamodb._commit_async import TransactPlan, commit_stores
from persisty.backends.dynamodb._plan import Plan as Access
from persisty.backends.dynamodb._plan import make_plan
from persisty.errors import (
    Conflict,
    NotFound,
    PersistyError,
    PreconditionFailed,
    Unavailable,
    ValidationError,
)
from persisty.model import StoreMeta, meta_of
from persisty.query import (
    ALL,
    Filter,
    Sort,
    compile_filter,
    seek,
    sort_spec,
    validate_filter,
)
from persisty.store import (
    AsyncDatabase,
    AsyncStore,
    AsyncStoreBase,
    Edit,
    EditResult,
    Insert,
    Key,
    Plan,
    Remove,
    Replace,
    WriteOp,
    check_changes,
    delete_keys_async,
    patch_keys_async,
)

MAX_TRANSACTION = 100
"""DynamoDB's limit of actions in one TransactWriteItems (edits plus unique markers)."""
BATCH_GET = 100
BATCH_WRITE = 25
DEFAULT_MAX_SORT = 10_000
DEFAULT_SEGMENTS = 4
DEFAULT_PREFIX = "persisty"


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


def _raw_key(item: dict[str, Any]) -> tuple[bytes, bytes]:
    sk = item.get(SK)
    return item[PK]["S"].encode(), bytes(sk["B"]) if sk is not None else b""


def _coalesce(ops: Sequence[WriteOp]) -> tuple[list[WriteOp | tuple[str, Key]], list[int]]:
    """Merge ops on the same key (one transaction may touch an item once); for each merged
    op, the index of the first original op it stands for."""
    merged: list[WriteOp | tuple[str, Key]] = []
    first: list[int] = []
    where: dict[Key, int] = {}
    for i, op in enumerate(ops):
        j = where.get(op.key)
        if j is None:
            where[op.key] = len(merged)
            merged.append(op)
            first.append(i)
            continue
        prev = merged[j]
        if isinstance(prev, Insert) and isinstance(op, Replace):
            merged[j] = Insert(op.key, op.item, op.etag)
        elif isinstance(prev, Insert) and isinstance(op, Remove):
            merged[j] = ("absent", op.key)
        elif isinstance(prev, tuple) and isinstance(op, Insert):
            merged[j] = op
        elif isinstance(prev, Replace | Remove) and isinstance(op, Replace):
            merged[j] = Replace(op.key, op.item, op.etag, prev.expected, prev.old)
        elif isinstance(prev, Replace) and isinstance(op, Remove):
            merged[j] = Remove(op.key, prev.expected, prev.old)
        elif isinstance(prev, Remove) and isinstance(op, Insert):
            merged[j] = Replace(op.key, op.item, op.etag, prev.expected, prev.old)
        else:
            merged[j] = op
    return merged, first


class AsyncDynamoStore(AsyncStoreBase[Any]):
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
        self._ready = False
        self._lock = asyncio.Lock()
        self._uniques = [(i, ix) for i, ix in enumerate(meta.indexes) if ix.unique]
        self._needs_meta = bool(self._uniques) or any(a.generated == "sequence" for a in meta.attrs)
        self._key_order = sort_spec(meta, None)
        # a condition expression checks etags, but unique markers need the stored item
        self.checks_expected = not self._uniques

    # ---- the table ------------------------------------------------------------------

    async def _prepare(self) -> None:
        if not self._ready:
            await self.ensure_table()

    async def ensure_table(self) -> list[str]:
        """Create the table and any missing GSI (on-demand billing) and wait until they are
        active; return what was done."""
        async with self._lock:
            done: list[str] = []
            if self._needs_meta:
                done += await self.database.ensure_meta()
            try:
                described = await self._describe_table()
            except botocore.exceptions.ClientError as e:
                if error_code(e) != "ResourceNotFoundException":
                    raise client_error(e, self.meta.name) from e
                try:
                    await self.client.call(
                        "create_table", **table_definition(self.table, self.meta)
                    )
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
            self._ready = True
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

    # ---- reads ------------------------------------------------------------------------

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

    async def _next_sequence(self, attr: str) -> int:
        return await self.database.next_sequence(f"{self.meta.name}|{attr}")

    async def _skip_sequence(self, attr: str, by: int) -> None:
        await self.database.next_sequence(f"{self.meta.name}|{attr}", by)

    # ---- writes -------------------------------------------------------------------------

    async def edit_batch(self, edits: Sequence[Edit], atomic: bool = True) -> list[EditResult[Any]]:
        if atomic and len(edits) > MAX_TRANSACTION:
            raise ValidationError(
                f"an atomic edit_batch on DynamoDB takes at most {MAX_TRANSACTION} edits "
                f"(one TransactWriteItems); got {len(edits)}: split it or pass atomic=False",
                field="edits",
            )
        return await super().edit_batch(edits, atomic)

    async def _commit(self, ops: Sequence[WriteOp], atomic: bool) -> list[PersistyError | None]:
        if not ops:
            return []
        await self._prepare()
        if len(ops) == 1:
            return [await self._write_one(ops[0])]
        if atomic:
            return await self._transact(ops)
        errors: list[PersistyError | None] = [None] * len(ops)
        inserts = [i for i, op in enumerate(ops) if isinstance(op, Insert)]
        others = [i for i, op in enumerate(ops) if not isinstance(op, Insert)]
        if self._uniques:
            others, inserts = list(range(len(ops))), []
        if inserts:
            for i, err in zip(
                inserts, await self._insert_many([ops[i] for i in inserts]), strict=True
            ):
                errors[i] = err
        if others:
            done = await self.client.gather([lambda op=ops[i]: self._write_one(op) for i in others])  # type: ignore[misc]
            for i, err in zip(others, done, strict=True):
                errors[i] = err
        return errors

    async def _insert_many(self, ops: Sequence[WriteOp]) -> list[PersistyError | None]:
        """New items by BatchWriteItem in 25s, after one BatchGetItem per 100 keys finds
        the keys that are taken."""
        errors: list[PersistyError | None] = [None] * len(ops)
        existing = await self._get_many([op.key for op in ops])
        requests = []
        for i, (op, found) in enumerate(zip(ops, existing, strict=True)):
            assert isinstance(op, Insert)
            if found is not None:
                errors[i] = Conflict(
                    f"{self.meta.name} {self.meta.key_string(op.key)!r} already exists"
                )
                continue
            try:
                requests.append({"PutRequest": {"Item": self.codec.dump(op.item, op.etag)}})
            except PersistyError as e:
                errors[i] = e
        await self._batch_write(requests)
        return errors

    async def _batch_write(self, requests: list[dict[str, Any]]) -> None:
        for start in range(0, len(requests), BATCH_WRITE):
            pending: dict[str, Any] = {self.table: requests[start : start + BATCH_WRITE]}
            attempt = 0
            while pending:
                try:
                    out = await self.client.call("batch_write_item", RequestItems=pending)
                except botocore.exceptions.ClientError as e:
                    raise client_error(e, self.meta.name) from e
                pending = out.get("UnprocessedItems") or {}
                if pending:
                    await self.client.sleep(backoff(attempt))
                    attempt += 1

    def _condition(self, op: WriteOp) -> dict[str, Any]:
        names = {"#k": PK}
        if isinstance(op, Insert):
            return {
                "ConditionExpression": "attribute_not_exists(#k)",
                "ExpressionAttributeNames": names,
            }
        if op.expected is None:
            return {
                "ConditionExpression": "attribute_exists(#k)",
                "ExpressionAttributeNames": names,
            }
        names["#e"] = ETAG
        return {
            "ConditionExpression": "attribute_exists(#k) AND #e = :e",
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": {":e": {"S": op.expected}},
        }

    async def _failed(self, op: WriteOp | tuple[str, Key]) -> PersistyError:
        """Why the item condition of ``op`` failed."""
        if isinstance(op, tuple):
            return Conflict(f"{self.meta.name} {self.meta.key_string(op[1])!r} already exists")
        name = f"{self.meta.name} {self.meta.key_string(op.key)!r}"
        if isinstance(op, Insert):
            return Conflict(f"{name} already exists")
        if await self._get(op.key) is None:
            return NotFound(f"no {name}")
        return PreconditionFailed("the item has changed (etag does not match)")

    async def _write_one(self, op: WriteOp) -> PersistyError | None:
        """One conditional PutItem/DeleteItem (a transaction when unique values change)."""
        if self._uniques:
            return (await self._transact([op]))[0]
        try:
            if isinstance(op, Remove):
                await self.client.call(
                    "delete_item",
                    TableName=self.table,
                    Key=self.codec.key_av(op.key),
                    **self._condition(op),
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
            else:
                item = self.codec.dump(op.item, op.etag)
                extra = (
                    {}
                    if isinstance(op, Insert)
                    else {"ReturnValuesOnConditionCheckFailure": "ALL_OLD"}
                )
                await self.client.call(
                    "put_item", TableName=self.table, Item=item, **self._condition(op), **extra
                )
        except PersistyError as e:
            return e
        except botocore.exceptions.ClientError as e:
            if error_code(e) == "ConditionalCheckFailedException":
                if isinstance(op, Insert):
                    return await self._failed(op)
                if e.response.get("Item") is None:
                    return NotFound(f"no {self.meta.name} {self.meta.key_string(op.key)!r}")
                return PreconditionFailed("the item has changed (etag does not match)")
            return client_error(e, self.meta.name)
        return None

    def _marker(self, ix_name: str, values: Sequence[Any]) -> str:
        raw = b"".join(order_bytes(v) for v in values)
        return self.database.marker_key(self.meta.name, ix_name, raw)

    async def _transact(self, ops: Sequence[WriteOp]) -> list[PersistyError | None]:
        """All of ``ops`` in one TransactWriteItems, with the unique-value markers."""
        plan = await self._transact_plan(ops)
        if any(plan.errors):
            return plan.errors
        return await self._send_transaction(plan)

    async def _transact_plan(self, ops: Sequence[WriteOp]) -> TransactPlan:
        """The actions of one TransactWriteItems for ``ops`` (or the errors that stop it)."""
        errors: list[PersistyError | None] = [None] * len(ops)
        ops = list(ops)
        if self._uniques:
            for i, op in enumerate(ops):
                if isinstance(op, Replace | Remove) and op.old is None:
                    found = await self._get(op.key)
                    if found is None:
                        errors[i] = NotFound(
                            f"no {self.meta.name} {self.meta.key_string(op.key)!r}"
                        )
                        return TransactPlan(errors)
                    if op.expected is not None and op.expected != found[1]:
                        errors[i] = PreconditionFailed("the item has changed (etag does not match)")
                        return TransactPlan(errors)
                    op.old, op.expected = found[0], found[1]
        merged, first = _coalesce(ops)
        actions: list[dict[str, Any]] = []
        owners: list[tuple[int, str, str]] = []  # (merged op, what, index attribute)
        meta_table = self.database.meta_table
        for j, mop in enumerate(merged):
            if isinstance(mop, tuple):
                actions.append(
                    {
                        "ConditionCheck": {
                            "TableName": self.table,
                            "Key": self.codec.key_av(mop[1]),
                            "ConditionExpression": "attribute_not_exists(#k)",
                            "ExpressionAttributeNames": {"#k": PK},
                        }
                    }
                )
                owners.append((j, "item", ""))
                continue
            op = mop
            try:
                if isinstance(op, Remove):
                    actions.append(
                        {
                            "Delete": {
                                "TableName": self.table,
                                "Key": self.codec.key_av(op.key),
                                **self._condition(op),
                            }
                        }
                    )
                else:
                    actions.append(
                        {
                            "Put": {
                                "TableName": self.table,
                                "Item": self.codec.dump(op.item, op.etag),
                                **self._condition(op),
                            }
                        }
                    )
            except PersistyError as e:
                errors[first[j]] = e
                return TransactPlan(errors)
            owners.append((j, "item", ""))
            key_text = self.meta.key_string(op.key)
            for _, ix in self._uniques:
                name = ix.index_name(self.meta.name)
                new = (
                    None if isinstance(op, Remove) else tuple(getattr(op.item, a) for a in ix.attrs)
                )
                old = (
                    None
                    if isinstance(op, Insert) or op.old is None
                    else tuple(getattr(op.old, a) for a in ix.attrs)
                )
                if new is not None and None in new:
                    new = None
                if old is not None and None in old:
                    old = None
                if new == old:
                    continue
                if old is not None:
                    actions.append(
                        {
                            "Delete": {
                                "TableName": meta_table,
                                "Key": {META_KEY: {"S": self._marker(name, old)}},
                                "ConditionExpression": "#o = :o",
                                "ExpressionAttributeNames": {"#o": "o"},
                                "ExpressionAttributeValues": {":o": {"S": key_text}},
                            }
                        }
                    )
                    owners.append((j, "unmark", ix.attrs[0]))
                if new is not None:
                    actions.append(
                        {
                            "Put": {
                                "TableName": meta_table,
                                "Item": {
                                    META_KEY: {"S": self._marker(name, new)},
                                    "o": {"S": key_text},
                                },
                                "ConditionExpression": "attribute_not_exists(#m)",
                                "ExpressionAttributeNames": {"#m": META_KEY},
                            }
                        }
                    )
                    owners.append((j, "mark", ix.attrs[0]))
        if len(actions) > MAX_TRANSACTION:
            errors[0] = ValidationError(
                f"this atomic batch needs {len(actions)} DynamoDB actions (edits plus unique "
                f"values); one transaction takes at most {MAX_TRANSACTION}",
                field="edits",
            )
            return TransactPlan(errors)
        return TransactPlan(errors, actions, owners, merged, first)

    async def _send_transaction(self, plan: TransactPlan) -> list[PersistyError | None]:
        """Send a planned transaction; the error of the op whose condition failed."""
        errors, actions = plan.errors, plan.actions
        for attempt in range(8):
            try:
                if len(actions) == 1 and "Put" in actions[0]:
                    await self.client.call("put_item", **actions[0]["Put"])
                elif len(actions) == 1 and "Delete" in actions[0]:
                    await self.client.call("delete_item", **actions[0]["Delete"])
                else:
                    await self.client.call("transact_write_items", TransactItems=actions)
                return errors
            except botocore.exceptions.ClientError as e:
                code = error_code(e)
                if code == "ConditionalCheckFailedException":
                    i, err = await self._transact_failure(plan, 0)
                    errors[i] = err
                    return errors
                if code != "TransactionCanceledException":
                    errors[0] = client_error(e, self.meta.name)
                    return errors
                reasons = e.response.get("CancellationReasons") or []
                failed = [
                    (n, r) for n, r in enumerate(reasons) if r.get("Code") not in (None, "None")
                ]
                checks = [(n, r) for n, r in failed if r.get("Code") == "ConditionalCheckFailed"]
                if not checks:
                    if any(r.get("Code") == "ValidationError" for _, r in failed):
                        errors[0] = ValidationError(
                            f"{self.meta.name}: DynamoDB refused the batch: "
                            f"{failed[0][1].get('Message', '')}"
                        )
                        return errors
                    await self.client.sleep(backoff(attempt))
                    continue  # a conflicting transaction: try again
                i, err = await self._transact_failure(plan, checks[0][0])
                errors[i] = err
                return errors
        errors[0] = Conflict("too many concurrent transactions; try again")
        return errors

    async def _transact_failure(self, plan: TransactPlan, n: int) -> tuple[int, PersistyError]:
        """Which op of ``plan`` the failed condition of action ``n`` belongs to, and why."""
        j, what, attr = plan.owners[n]
        i = plan.first[j]
        if what == "item":
            return i, await self._failed(plan.merged[j])
        if what == "mark":
            return i, Conflict(
                f"{self.meta.name}: {attr} value is already taken (unique index)", field=attr
            )
        return i, PreconditionFailed("the item has changed")

    # ---- search -------------------------------------------------------------------------

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

    async def _call(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        try:
            return await self.client.call(operation, **params)
        except botocore.exceptions.ClientError as e:
            raise client_error(e, self.meta.name) from e

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

    # ---- fewer round trips where the contract allows it -------------------------------

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
            store._ready = False
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
            start: str | None = None
            while True:
                params: dict[str, Any] = {"Limit": 100}
                if start:
                    params["ExclusiveStartTableName"] = start
                out = await self.client.call("list_tables", **params)
                for table in out.get("TableNames", []):
                    if table.startswith(self.table_prefix):
                        await self._delete_table(table)
                start = out.get("LastEvaluatedTableName")
                if not start:
                    break
            await self._drop_meta_entries((f"u|{ns}|", f"seq|{ns}|"))
        for s in stores:
            s._ready = False

    async def footprint(self, cls: type[Any] | None = None) -> list[str]:
        """The tables and meta entries of the store of ``cls`` (else of the namespace)."""
        ns = self.namespace or "_"
        if cls is None:
            table_prefix, prefixes = self.table_prefix, (f"u|{ns}|", f"seq|{ns}|")
        else:
            name = meta_of(cls).name
            table_prefix = self.table_prefix + name
            prefixes = (f"u|{ns}|{name}|", f"seq|{ns}|{name}|")
        found: list[str] = []
        start: str | None = None
        while True:
            params: dict[str, Any] = {"Limit": 100}
            if start:
                params["ExclusiveStartTableName"] = start
            out = await self.client.call("list_tables", **params)
            found += [
                t
                for t in out.get("TableNames", [])
                if (t == table_prefix if cls is not None else t.startswith(table_prefix))
            ]
            start = out.get("LastEvaluatedTableName")
            if not start:
                break
        return found + await self._meta_entries(prefixes)

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
        keys = [{META_KEY: {"S": name}} for name in await self._meta_entries(prefixes)]
        for s in range(0, len(keys), BATCH_WRITE):
            pending: dict[str, Any] = {
                self.meta_table: [{"DeleteRequest": {"Key": k}} for k in keys[s : s + BATCH_WRITE]]
            }
            attempt = 0
            while pending:
                out = await self.client.call("batch_write_item", RequestItems=pending)
                pending = out.get("UnprocessedItems") or {}
                if pending:
                    await self.client.sleep(backoff(attempt))
                    attempt += 1

    async def close(self) -> None:
        """Close the HTTP connections."""
        await self.client.close()
