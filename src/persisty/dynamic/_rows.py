"""Reading rows to import: CSV with a header row, or JSON Lines, each row checked against
a store's model and numbered by its line in the input."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from persisty.dynamic._report import RowError
from persisty.errors import PersistyError
from persisty.model import StoreMeta

MAX_ROWS = 1_000_000
_JSON_KINDS = frozenset({"list", "dict", "struct", "any"})

Row = tuple[int, dict[str, Any]]


def rows_of(text: str | Iterable[str], fmt: str) -> Iterator[tuple[int, Any]]:
    """``(line, row)`` for each row: a dict of the cells (CSV; empty cells left out) or the
    decoded JSON value (JSON Lines; blank lines skipped). A line that is not JSON gives a
    :class:`RowError` in place of the row.

    Example::

        from persisty.dynamic import rows_of

        assert list(rows_of(["id,n", "a,1"], "csv")) == [(2, {"id": "a", "n": "1"})]
    """
    lines = io.StringIO(text) if isinstance(text, str) else text
    if fmt == "csv":
        reader = csv.DictReader(lines, strict=True)
        try:
            for n, row in enumerate(reader):
                if n >= MAX_ROWS:
                    break
                extra = row.pop(None, None)
                if extra:
                    yield (
                        reader.line_num,
                        RowError(reader.line_num, None, "the row has more cells than the header"),
                    )
                    continue
                yield reader.line_num, {k: v for k, v in row.items() if v not in ("", None)}
        except csv.Error as e:
            yield reader.line_num, RowError(reader.line_num, None, f"not CSV: {e}")
        return
    if fmt != "jsonl":
        raise ValueError(f"unknown format {fmt!r} (csv or jsonl)")
    for n, line in enumerate(lines, start=1):
        if n > MAX_ROWS:
            break
        if not line.strip():
            continue
        try:
            yield n, json.loads(line)
        except ValueError as e:
            yield n, RowError(n, None, f"not JSON: {e}")


def checked(
    meta: StoreMeta,
    rows: Iterable[tuple[int, Any]],
    *,
    cells: bool,
    forced: Mapping[str, Any] | None = None,
) -> Iterator[tuple[int, dict[str, Any] | RowError]]:
    """Each row as the values to create, or the :class:`RowError` naming why it cannot be
    (an unknown column, a cell of the wrong type, a constraint …). ``cells``: the values
    are CSV text (lists and objects as JSON); ``forced``: values the caller's policy sets."""
    for line, row in rows:
        if isinstance(row, RowError):
            yield line, row
            continue
        if not isinstance(row, Mapping):
            yield line, RowError(line, None, "a row must be a JSON object")
            continue
        try:
            data = _cells(meta, row, line) if cells else dict(row)
            meta.from_builtins({**(forced or {}), **data})
        except PersistyError as e:
            yield line, RowError(line, e.field, e.message)
            continue
        except RowErrorSignal as e:
            yield line, e.error
            continue
        yield line, data


class RowErrorSignal(Exception):
    """A cell that cannot be read (carries its :class:`RowError`)."""

    def __init__(self, error: RowError) -> None:
        super().__init__(error.message)
        self.error = error


def _cells(meta: StoreMeta, row: Mapping[str, Any], line: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in row.items():
        a = meta.by_name.get(name)
        if a is None:
            raise RowErrorSignal(RowError(line, name, f"{name!r} is not an attribute"))
        if a.kind in _JSON_KINDS and isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                raise RowErrorSignal(RowError(line, name, f"{name}: not JSON")) from None
        out[name] = value
    return out
