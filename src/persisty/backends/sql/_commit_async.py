"""Writes to several tables of one SQL database in one transaction (``db.commit``).

The sync twin ``_commit_sync.py`` is generated from this file; edit this one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from persisty.errors import PersistyError
from persisty.store import WriteOp


async def commit_stores(db: Any, groups: Sequence[tuple[Any, Sequence[WriteOp]]]
                        ) -> list[list[PersistyError | None]]:
    """Apply each store's ops (and its outbox rows) in one transaction: all or nothing."""
    if len(groups) == 1:
        store, ops = groups[0]
        return [await store._commit(ops, True)]
    for store, _ in groups:
        if not store._ready:
            await store._prepare()
    errors: list[list[PersistyError | None]] = [[None] * len(ops) for _, ops in groups]
    async with db._connection() as conn:
        await db._begin(conn)
        try:
            for n, (store, ops) in enumerate(groups):
                for j, op in enumerate(ops):
                    try:
                        await store._apply(conn, op)
                    except PersistyError as e:
                        errors[n][j] = e
                        await db._rollback(conn)
                        return errors
                if store._outbox is not None:
                    await store._outbox.write(conn, ops)
            await db._commit(conn)
        except BaseException:
            await db._rollback(conn, quiet=True)
            raise
    return errors
