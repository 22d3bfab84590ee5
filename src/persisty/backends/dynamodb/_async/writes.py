"""DynamoDB writes (async): conditional PutItem/DeleteItem, BatchWriteItem, TransactWriteItems.

The sync twin ``_sync/writes.py`` is generated from this file by ``scripts/generate_sync.py``;
edit this file, never the twin.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import botocore.exceptions

from persisty.backends.dynamodb._async.commit import MAX_TRANSACTION, TransactPlan
from persisty.backends.dynamodb._async.reads import AsyncDynamoReads, write_batches
from persisty.backends.dynamodb._clients import META_KEY, backoff, client_error, error_code
from persisty.backends.dynamodb._codec import ETAG, PK, VERSION, order_bytes
from persisty.errors import Conflict, NotFound, PersistyError, PreconditionFailed, ValidationError
from persisty.store import Edit, EditResult, Insert, Key, Remove, Replace, WriteOp


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


FILL_ATTEMPTS = 4
"""How often one conditional write tries again after filling in an etag a patch without a
read left out (each patch between takes the etag seen away, so this ends)."""


class AsyncDynamoWrites(AsyncDynamoReads):
    """The writes of :class:`AsyncDynamoStore`: conditional PutItem / DeleteItem, batches
    by BatchWriteItem, atomic batches and unique-value markers by TransactWriteItems."""

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
        await write_batches(self.client, self.table, requests, self.meta.name)

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

    async def _failed(self, op: WriteOp | tuple[str, Key]) -> PersistyError | None:
        """Why the item condition of ``op`` failed; ``None`` when the item had no etag (a
        patch without a read) and its content hashes to the expected one, which is now
        filled in: the write may try again."""
        if isinstance(op, tuple):
            return Conflict(f"{self.meta.name} {self.meta.key_string(op[1])!r} already exists")
        name = f"{self.meta.name} {self.meta.key_string(op.key)!r}"
        if isinstance(op, Insert):
            return Conflict(f"{name} already exists")
        raw = await self._get_raw(op.key)
        if raw is None:
            return NotFound(f"no {name}")
        if await self._fill(raw, op.expected):
            return None
        return PreconditionFailed("the item has changed (etag does not match)")

    async def _get_raw(self, key: Key) -> dict[str, Any] | None:
        out = await self._call(
            "get_item",
            {"TableName": self.table, "Key": self.codec.key_av(key), "ConsistentRead": True},
        )
        raw: dict[str, Any] | None = out.get("Item")
        return raw

    async def _fill(self, raw: dict[str, Any], expected: str | None) -> bool:
        """Whether the stored item ``raw`` had no etag (a patch without a read leaves it
        out) and its content hashes to ``expected``, now stored as its etag (only while no
        other such patch came between: its version is the one read)."""
        if expected is None or ETAG in raw or VERSION not in raw:
            return False
        item, tag = self.codec.load(raw)
        if tag != expected:
            return False
        try:
            await self.client.call(
                "update_item",
                TableName=self.table,
                Key=self.codec.key_av(self.meta.key_values(item)),
                UpdateExpression="SET #e = :e",
                ConditionExpression="attribute_not_exists(#e) AND #v = :v",
                ExpressionAttributeNames={"#e": ETAG, "#v": VERSION},
                ExpressionAttributeValues={":e": {"S": expected}, ":v": raw[VERSION]},
            )
        except botocore.exceptions.ClientError as e:
            if error_code(e) == "ConditionalCheckFailedException":
                return False  # patched again meanwhile: the etag seen is gone
            raise client_error(e, self.meta.name) from e
        return True

    async def _write_one(self, op: WriteOp) -> PersistyError | None:
        """One conditional PutItem/DeleteItem (a transaction when unique values change)."""
        if self._uniques:
            return (await self._transact([op]))[0]
        for _ in range(FILL_ATTEMPTS):
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
                if error_code(e) != "ConditionalCheckFailedException":
                    return client_error(e, self.meta.name)
                if isinstance(op, Insert):
                    return await self._failed(op)
                old: Any = e.response.get("Item")
                if old is None:
                    return NotFound(f"no {self.meta.name} {self.meta.key_string(op.key)!r}")
                if await self._fill(old, op.expected):
                    continue
                return PreconditionFailed("the item has changed (etag does not match)")
            return None
        return PreconditionFailed("the item has changed (etag does not match)")

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
                    if err is None:
                        continue  # an etag filled in: try again
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
                if err is None:
                    continue  # an etag filled in: try again
                errors[i] = err
                return errors
        errors[0] = Conflict("too many concurrent transactions; try again")
        return errors

    async def _transact_failure(
        self, plan: TransactPlan, n: int
    ) -> tuple[int, PersistyError | None]:
        """Which op of ``plan`` the failed condition of action ``n`` belongs to, and why
        (``None``: an etag was filled in, the transaction may try again)."""
        j, what, attr = plan.owners[n]
        i = plan.first[j]
        if what == "item":
            return i, await self._failed(plan.merged[j])
        if what == "mark":
            return i, Conflict(
                f"{self.meta.name}: {attr} value is already taken (unique index)", field=attr
            )
        return i, PreconditionFailed("the item has changed")
