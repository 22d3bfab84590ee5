"""The list page of a store: state in the URL (the REST query-string form plus ``prev``, the
page keys behind the current one), a filter panel per attribute kind, sort headers checked
on the server, keyset paging, a count capped at 1,000, bulk delete and patch, and exports."""

from __future__ import annotations

import csv
import io
import zoneinfo
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from persisty.errors import ValidationError
from persisty.model import AttrMeta
from persisty.query import ALL, PAGING_WORDS, Filter, Order, filter_from_query
from persisty.serve._api import Served
from persisty.serve._limits import check_query_json
from persisty.serve.admin._fields import (
    display,
    filterable,
    is_large,
    local_for_filter,
    text_for_filter,
)
from persisty.serve.admin._site import Site
from persisty.store import Edit

COUNT_CAP = 1000
PAGE_SIZES = (10, 20, 50, 100, 200)
DEFAULT_PAGE_SIZE = 20
MAX_PREV = 40
PAGING = PAGING_WORDS | {"prev"}
LOCAL = frozenset({"prev", "_tz"})
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


@dataclass
class ListState:
    """Everything a list URL says."""

    filter_pairs: list[tuple[str, str]]
    order: str | None
    limit: int
    page_key: str | None
    prev: list[str]

    def query(self, **changes: Any) -> str:
        """The query string of this state with ``changes`` (``None`` drops a part)."""
        pairs = list(self.filter_pairs)
        order = changes.get("order", self.order)
        limit = changes.get("limit", self.limit)
        page_key = changes.get("page_key", self.page_key)
        prev = changes.get("prev", self.prev)
        if order:
            pairs.append(("order", order))
        if limit and limit != DEFAULT_PAGE_SIZE:
            pairs.append(("limit", str(limit)))
        if page_key:
            pairs.append(("page_key", page_key))
        pairs += [("prev", p) for p in prev or ()]
        return urlencode(pairs)


def list_state(request: Request) -> ListState:
    pairs = [(k, v) for k, v in request.query_params.multi_items() if k != "_tz"]
    seen: set[str] = set()
    for k, _ in pairs:
        if k in seen and k in PAGING_WORDS:
            raise ValidationError(f"{k} is given twice", field=k)
        seen.add(k)
    params = dict(pairs)
    limit_text = params.get("limit")
    try:
        limit = int(limit_text) if limit_text else DEFAULT_PAGE_SIZE
    except ValueError:
        raise ValidationError("limit must be a number", field="limit") from None
    if not 1 <= limit <= max(PAGE_SIZES):
        raise ValidationError(f"limit must be between 1 and {max(PAGE_SIZES)}", field="limit")
    return ListState(
        filter_pairs=[(k, v) for k, v in pairs if k not in PAGING],
        order=params.get("order") or None,
        limit=limit,
        page_key=params.get("page_key") or None,
        prev=[v for k, v in pairs if k == "prev"][-MAX_PREV:],
    )


def clean_query(request: Request, served: Served, zone: zoneinfo.ZoneInfo) -> str | None:
    """The canonical query string when the URL has empty filter fields or local datetimes
    (a submitted filter panel), else ``None``."""
    pairs = request.query_params.multi_items()
    out: list[tuple[str, str]] = []
    changed = False
    form_zone = (
        Site.zone_named(request.query_params.get("_tz")) if "_tz" in request.query_params else zone
    )
    for k, v in pairs:
        if k == "_tz" or (v == "" and k not in ("page_key",)):
            changed = True
            continue
        attr = served.meta.by_name.get(k.partition("__")[0])
        if attr is not None and k != "q":
            converted = text_for_filter(attr, v, form_zone)
            if converted != v:
                changed = True
                v = converted
        out.append((k, v))
    return urlencode(out) if changed else None


def state_filter(site: Site, state: ListState) -> Filter:
    check_query_json(state.filter_pairs, site.api.limits)
    return filter_from_query(state.filter_pairs) if state.filter_pairs else ALL


def check_order(order: str | None, sortable: set[str]) -> None:
    """A hand-made ``order`` naming an attribute without a sort header is refused (422)."""
    if not order:
        return
    for o in Order.parse(order):
        if o.attr not in sortable:
            raise ValidationError(
                f"cannot sort by {o.attr!r}: sortable are {', '.join(sorted(sortable)) or 'none'}",
                field="order",
            )


async def capped_count(store: Any, f: Filter) -> tuple[int, bool]:
    """How many items match, counting at most 1,000 (a bounded read, never a full count)."""
    page = await store.search(f, None, COUNT_CAP, None)
    return len(page.items), page.next_page_key is not None


@dataclass
class FilterField:
    """One control of the filter panel."""

    attr: AttrMeta
    control: str  # text range select bool exists
    params: list[tuple[str, str, str]] = field(default_factory=list)
    """(query name, label, current value)."""
    options: list[str] = field(default_factory=list)
    input: str = "text"


def filter_panel(
    served: Served, attrs: Sequence[AttrMeta], state: ListState, zone: zoneinfo.ZoneInfo
) -> list[FilterField]:
    current = dict(state.filter_pairs)
    out: list[FilterField] = []
    for a in attrs:
        if not filterable(a) or is_large(a):
            continue
        n = a.name

        def value(name: str, a: AttrMeta = a) -> str:
            return local_for_filter(a, current.get(name, ""), zone)

        if a.kind == "enum" and a.enum_type is not None:
            f = FilterField(
                a, "select", [(n, a.name, value(n))], options=[str(m.value) for m in a.enum_type]
            )
        elif a.kind == "bool":
            f = FilterField(a, "select", [(n, a.name, value(n))], options=["true", "false"])
        elif a.kind in ("int", "float", "decimal", "datetime", "date"):
            kind = {"datetime": "datetime-local", "date": "date"}.get(a.kind, "number")
            f = FilterField(
                a,
                "range",
                [
                    (n + "__gte", "from", value(n + "__gte")),
                    (n + "__lte", "to", value(n + "__lte")),
                ],
                input=kind,
            )
        elif a.kind == "str":
            f = FilterField(a, "text", [(n + "__icontains", "contains", value(n + "__icontains"))])
        else:
            f = FilterField(a, "text", [(n, "equals", value(n))])
        if a.optional:
            f.params.append((n + "__exists", "set", current.get(n + "__exists", "")))
        out.append(f)
    return out


# ---- bulk actions -------------------------------------------------------------------------


async def bulk_delete(store: Any, keys: Sequence[str]) -> str:
    """Deletes ``keys`` one by one (each under the caller's policy); what happened."""
    results = await store.edit_batch([Edit.delete(k) for k in keys], atomic=False)
    return summarize(results, "deleted")


async def bulk_patch(store: Any, keys: Sequence[str], changes: dict[str, Any]) -> str:
    results = await store.edit_batch([Edit.patch(k, changes) for k in keys], atomic=False)
    return summarize(results, "updated")


def summarize(results: Sequence[Any], done: str) -> str:
    ok = sum(1 for r in results if r.ok)
    missing = sum(1 for r in results if not r.ok and r.code == "not_found")
    failed = [r for r in results if not r.ok and r.code != "not_found"]
    parts = [f"{ok:,} {done}"]
    if missing:
        parts.append(f"{missing:,} not found")
    if failed:
        parts.append(f"{len(failed):,} failed ({failed[0].message})")
    return ", ".join(parts)


# ---- export ---------------------------------------------------------------------------------


def csv_cell(a: AttrMeta, value: Any) -> str:
    """A CSV cell; text a spreadsheet would run as a formula is prefixed with ``'``."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if a.kind in ("int", "float", "decimal"):
        return str(value)
    text = (
        display(a, value, zoneinfo.ZoneInfo("UTC"))
        if a.kind not in ("datetime",)
        else (value.isoformat().replace("+00:00", "Z"))
    )
    if a.kind == "bytes":
        import base64

        text = base64.b64encode(value).decode()
    if text.startswith(_FORMULA):
        text = "'" + text
    return text


def export(
    site: Site,
    served: Served,
    store: Any,
    f: Filter,
    order: str | None,
    attrs: Sequence[AttrMeta],
    fmt: str,
) -> Response:
    """Every matching item (all pages, fetched as it is sent) as CSV or JSON Lines."""
    import msgspec

    encoder = msgspec.json.Encoder()

    async def rows() -> AsyncIterator[bytes]:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        if fmt == "csv":
            writer.writerow([a.name for a in attrs])
        chunk: list[bytes] = []
        async for item in store.search_all(f, order, page_size=500):
            if fmt == "csv":
                writer.writerow([csv_cell(a, getattr(item, a.name, None)) for a in attrs])
                chunk.append(buffer.getvalue().encode())
                buffer.seek(0)
                buffer.truncate()
            else:
                data = msgspec.to_builtins(site.api.out(served, item))
                chunk.append(encoder.encode({a.name: data.get(a.name) for a in attrs}) + b"\n")
            if len(chunk) >= 200:
                yield b"".join(chunk)
                chunk = []
        if fmt == "csv" and buffer.getvalue():
            chunk.append(buffer.getvalue().encode())
        if chunk:
            yield b"".join(chunk)

    media = "text/csv; charset=utf-8" if fmt == "csv" else "application/x-ndjson"
    ext = "csv" if fmt == "csv" else "jsonl"
    return StreamingResponse(
        rows(),
        media_type=media,
        headers={"Content-Disposition": f'attachment; filename="{served.name}.{ext}"'},
    )
