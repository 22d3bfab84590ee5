"""Writes to several tables of one SQL database in one transaction (``db.commit``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from persisty.errors import PersistyError
from persisty.store import WriteOp


async def commit_stores(
    executor: Any, groups: Sequence[tuple[Any, Sequence[WriteOp]]]
) -> list[list[PersistyError | None]]:
    """Apply each store's ops (and its outbox rows) in one transaction: all or nothing."""
    if len(groups) == 1:
        store, ops = groups[0]
        return [await store._commit(ops, True)]
    for store, _ in groups:
        await store._prepare()
    errors: list[list[PersistyError | None]] = [[None] * len(ops) for _, ops in groups]
    async with executor.connection() as conn:
        await executor.begin(conn)
        try:
            for n, (store, ops) in enumerate(groups):
                for j, op in enumerate(ops):
                    try:
                        await store._apply(conn, op)
                    except PersistyError as e:
                        errors[n][j] = e
                        await executor.rollback(conn)
                        return errors
                await store._log(conn, ops)
            await executor.commit(conn)
        except BaseException:
            await executor.rollback(conn, quiet=True)
            raise
    return errors
