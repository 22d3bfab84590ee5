"""Changing a definition's data: the fenced copy of one data generation into the next
(through a transform), and the defaults of added attributes written into document
engines' items."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from persisty.dynamic._models import Definition, next_generation
from persisty.dynamic._order import laid_out
from persisty.dynamic._report import MigrationFailed, MigrationReport, RowError
from persisty.dynamic._time import sleep_async
from persisty.errors import NotFound, PersistyError, Unavailable
from persisty.layers import encrypted
from persisty.model import etag, meta_of
from persisty.store import AsyncDatabase, AsyncStore, Edit

if TYPE_CHECKING:
    from persisty.dynamic._async.catalog import AsyncCatalog

SQL_SCHEMES = ("sqlite", "postgresql", "postgres", "mysql", "mariadb")
Transform = Callable[[dict[str, Any]], dict[str, Any] | None]


def scheme_of(db: AsyncDatabase) -> str:
    """The engine of ``db``'s URL (``"postgresql"`` for ``postgresql+psycopg://…``)."""
    return db.url.split(":", 1)[0].split("+")[0]


async def fenced_copy(
    cat: AsyncCatalog,
    d: Definition,
    tag: str,
    norm: dict[str, Any],
    transform: Transform | None,
    skip_errors: bool,
) -> MigrationReport:
    """Fence ``d``'s writes, copy its items into a new data generation of ``norm`` and
    switch the definition to it; on any failure drop the copy and lift the fence."""
    if d.state == "fenced":
        raise Unavailable(f"{d.name} is being migrated")
    generation = next_generation(d)
    new_cls = cat._class(norm, d.name, d.version + 1, generation)
    fenced = await cat.definitions.update(dataclasses.replace(d, state="fenced"), if_match=tag)
    await cat._bump()
    db = cat.db
    try:
        await sleep_async(cat.staleness)  # every process has seen the fence by now
        source = cat._entry_of(d).store
        target = db.store(new_cls)
        if cat.keys is not None and norm["encrypted"]:
            target = encrypted(target, fields=list(norm["encrypted"]), keys=cat.keys)
        await db.drop(new_cls)  # what an interrupted earlier attempt left
        report = await copy_generation(source, target, transform, cat.batch_size)
        if report.errors and not skip_errors:
            raise MigrationFailed(report)
    except BaseException:
        try:
            await db.drop(new_cls)
        finally:
            await cat.definitions.update(
                dataclasses.replace(fenced, state="live"), if_match=etag(fenced)
            )
            await cat._bump()
        raise
    retired = [
        *fenced.retired,
        {"generation": d.generation, "version": d.version, "spec": d.spec},
    ]
    switched = dataclasses.replace(
        fenced,
        state="live",
        version=d.version + 1,
        generation=generation,
        spec=norm,
        retired=retired,
        epoch=d.epoch + 1,
    )
    await cat.definitions.update(laid_out(switched), if_match=etag(fenced))
    await cat._bump()
    return report


async def backfill(
    db: AsyncDatabase, cls: type[Any], old: Mapping[str, Any], new: Mapping[str, Any]
) -> None:
    """Document engines keep old items without an added attribute: its default is only
    filled in when they are read, so native filters and indexes would miss them. Write the
    default into each item that shows it or nothing (some engines decode a missing
    attribute as ``None``); SQL fills the new column, and memory converts its items, by
    themselves."""
    scheme = scheme_of(db)
    added = {
        n: a["default"]
        for n, a in new["attrs"].items()
        if n not in old["attrs"] and a.get("default") is not None
    }
    if not added or scheme in SQL_SCHEMES or scheme == "memory":
        return
    store = db.store(cls)
    meta = meta_of(cls)
    defaults = {n: meta.by_name[n].coerce(v) for n, v in added.items()}
    keys = [
        meta.key_of(item)
        async for item in store.search_all()
        if any(getattr(item, n) in (v, None) for n, v in defaults.items())
    ]
    for key in keys:
        try:
            await store.patch(key, defaults)
        except NotFound:
            continue  # deleted meanwhile


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
