"""Writes to several tables of one DynamoDB database in one ``TransactWriteItems``.

The sync twin ``_sync/commit.py`` is generated from this file by ``scripts/generate_sync.py``;
edit this file, never the twin.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import botocore.exceptions

from persisty.backends.dynamodb._clients import backoff, client_error, error_code
from persisty.errors import Conflict, PersistyError, ValidationError
from persisty.store import WriteOp

MAX_TRANSACTION = 100
"""DynamoDB's limit of actions in one TransactWriteItems (edits plus unique markers)."""


@dataclass(slots=True)
class TransactPlan:
    """The actions of one store's part of a transaction: ``owners[n]`` is (merged op,
    what, index attribute) of action ``n``, ``first[j]`` the op merged op ``j`` came from;
    ``errors`` holds the error that stops it before anything is sent."""

    errors: list[PersistyError | None]
    actions: list[dict[str, Any]] = field(default_factory=list)
    owners: list[tuple[int, str, str]] = field(default_factory=list)
    merged: list[Any] = field(default_factory=list)
    first: list[int] = field(default_factory=list)


async def commit_stores(
    groups: Sequence[tuple[Any, Sequence[WriteOp]]],
) -> list[list[PersistyError | None]]:
    """Each store's ops in one TransactWriteItems: all or nothing across the tables."""
    if len(groups) == 1:
        store, ops = groups[0]
        return [await store._commit(ops, True)]
    plans: list[TransactPlan] = []
    errors: list[list[PersistyError | None]] = [[None] * len(ops) for _, ops in groups]
    for n, (store, ops) in enumerate(groups):
        await store._prepare()
        plan = await store._transact_plan(ops)
        if any(plan.errors):
            errors[n] = plan.errors
            return errors
        plans.append(plan)
    actions = [a for p in plans for a in p.actions]
    owner: list[tuple[int, int]] = [
        (n, i) for n, p in enumerate(plans) for i in range(len(p.actions))
    ]
    if len(actions) > MAX_TRANSACTION:
        errors[0][0] = ValidationError(
            f"this commit needs {len(actions)} DynamoDB actions (writes plus unique values); "
            f"one transaction takes at most {MAX_TRANSACTION}",
            field="writes",
        )
        return errors
    client = groups[0][0].client
    for attempt in range(8):
        try:
            await client.call("transact_write_items", TransactItems=actions)
            return errors
        except botocore.exceptions.ClientError as e:
            if error_code(e) != "TransactionCanceledException":
                errors[0][0] = client_error(e, groups[0][0].meta.name)
                return errors
            reasons = e.response.get("CancellationReasons") or []
            failed = [(k, r) for k, r in enumerate(reasons) if r.get("Code") not in (None, "None")]
            checks = [k for k, r in failed if r.get("Code") == "ConditionalCheckFailed"]
            if not checks:
                if any(r.get("Code") == "ValidationError" for _, r in failed):
                    errors[0][0] = ValidationError(
                        "DynamoDB refused the commit: " + str(failed[0][1].get("Message", "")),
                        field="writes",
                    )
                    return errors
                await client.sleep(backoff(attempt))
                continue  # a conflicting transaction: try again
            n, k = owner[checks[0]]
            i, err = await groups[n][0]._transact_failure(plans[n], k)
            if err is None:
                continue  # an etag filled in: try again
            errors[n][i] = err
            return errors
    errors[0][0] = Conflict("too many concurrent transactions; try again")
    return errors
