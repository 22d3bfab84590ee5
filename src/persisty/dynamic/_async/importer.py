"""Writing imported rows into a store: all or nothing (``atomic``), or every valid row."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from persisty.dynamic._report import ImportReport, RowError
from persisty.dynamic._rows import checked
from persisty.store import AsyncStore, Edit

BATCH = 500


async def import_rows(
    store: AsyncStore[Any],
    rows: Iterable[tuple[int, Any]],
    *,
    cells: bool,
    atomic: bool = False,
    forced: Mapping[str, Any] | None = None,
    batch_size: int = BATCH,
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Create one item per row (see :func:`persisty.dynamic.rows_of`); a rejected row is
    reported with its line, field and message. ``atomic``: nothing is written unless every
    row is valid and every create succeeds. ``progress`` is called with the rows done.

    Example::

        from persisty.dynamic import catalog, import_rows_async, rows_of

        cat = catalog(db)
        await cat.define({"name": "people", "key": "email", "attrs": {"email": "str"}})
        people = await cat.store("people")
        lines = ["email", "ann@x"]
        report = await import_rows_async(people, rows_of(lines, "csv"), cells=True)
        assert report.imported == 1
    """
    report = ImportReport()
    batch: list[tuple[int, dict[str, Any]]] = []
    done = 0
    for line, row in checked(store.meta, rows, cells=cells, forced=forced):
        done += 1
        if isinstance(row, RowError):
            report.add_error(row)
        else:
            batch.append((line, row))
            if not atomic and len(batch) >= batch_size:
                await _write(store, batch, False, report)
                batch = []
        if progress is not None and done % 100 == 0:
            progress(done)
    if atomic and report.failed:
        return report
    if batch:
        await _write(store, batch, atomic, report)
    if progress is not None:
        progress(done)
    return report


async def _write(
    store: AsyncStore[Any],
    batch: list[tuple[int, dict[str, Any]]],
    atomic: bool,
    report: ImportReport,
) -> None:
    results = await store.edit_batch([Edit.create(row) for _, row in batch], atomic=atomic)
    ok = 0
    for (line, _), r in zip(batch, results, strict=True):
        if r.ok:
            ok += 1
        elif r.code != "aborted":
            report.add_error(RowError(line, r.field, r.message or r.code or "failed"))
    if atomic and ok != len(batch):
        return  # rolled back: nothing of the batch is written
    report.imported += ok
