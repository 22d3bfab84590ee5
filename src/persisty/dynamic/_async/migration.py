"""Copying the items of one data generation into the next, through a transform."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from typing import Any

from persisty.dynamic._report import MigrationReport, RowError
from persisty.errors import PersistyError
from persisty.store import AsyncStore, Edit


async def copy_generation(
    source: AsyncStore[Any],
    target: AsyncStore[Any],
    transform: Callable[[dict[str, Any]], dict[str, Any] | None] | None,
    batch_size: int,
) -> MigrationReport:
    """Copy every item of ``source`` into ``target`` in batches of ``batch_size``; each goes
    through ``transform`` (its JSON values) and ``target``'s validation, and a row that
    fails is reported (its position in key order, key, field and message), not written.
    Generated values (timestamps) are kept as they were."""
    report = MigrationReport()
    old, new = source.meta, target.meta
    restore = getattr(target, "restore", None)
    batch: list[tuple[int, str, Any]] = []
    line = 0
    async for item in source.search_all(page_size=batch_size):
        line += 1
        key = old.key_of(item)
        try:
            data: Any = old.to_builtins(item)
            if transform is not None:
                data = transform(data)
                if data is None:
                    report.skipped += 1
                    continue
            else:  # attributes the new version drops go with it
                data = {k: v for k, v in data.items() if k in new.by_name}
            data = _stamp(new, data)
            batch.append((line, key, new.from_builtins(data)))
        except PersistyError as e:
            report.add_error(RowError(line, e.field, e.message, key))
        except Exception as e:  # the caller's transform failed on this row
            report.add_error(
                RowError(line, None, f"transform failed: {type(e).__name__}: {e}", key)
            )
        if len(batch) >= batch_size:
            await _write(target, restore, batch, report)
            batch = []
    if batch:
        await _write(target, restore, batch, report)
    return report


def _stamp(meta: Any, data: Any) -> Any:
    """Generated attributes new in the target get a value (their creation is now)."""
    if not isinstance(data, dict):
        return data
    for a in meta.set_on_create:
        if data.get(a.name) is None:
            if a.generated in ("created", "updated"):
                data = {**data, a.name: dt.datetime.now(dt.UTC).isoformat()}
            elif a.generated == "uuid":
                data = {**data, a.name: str(uuid.uuid4())}
    return data


async def _write(
    target: AsyncStore[Any],
    restore: Any,
    batch: list[tuple[int, str, Any]],
    report: MigrationReport,
) -> None:
    items = [item for _, _, item in batch]
    if restore is not None:
        results = await restore(items, replace=True)
    else:
        results = await target.edit_batch([Edit.put(i) for i in items], atomic=False)
    for (line, key, _), r in zip(batch, results, strict=True):
        if r.ok:
            report.copied += 1
        else:
            report.add_error(RowError(line, r.field, r.message or r.code or "failed", key))
