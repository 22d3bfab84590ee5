"""The index, list, bulk-action, export and type-ahead endpoints."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from persisty.errors import Forbidden, PersistyError, ValidationError
from persisty.query import F, Filter, Or, TextQuery
from persisty.serve._api import MAX_BATCH, JSONResponse, Served, check_values
from persisty.serve.admin._fields import Widget, display, is_large, parse, widget_kind, widgets
from persisty.serve.admin._listing import (
    DEFAULT_PAGE_SIZE,
    PAGE_SIZES,
    ListState,
    bulk_delete,
    bulk_patch,
    capped_count,
    check_order,
    clean_query,
    export,
    filter_panel,
    list_state,
    state_filter,
)
from persisty.serve.admin._site import Site, safe_next

SUGGESTIONS = 20


def belongs_to(site: Site, served: Served) -> dict[str, str]:
    """Foreign-key attribute -> the served store it refers to."""
    rels = site.graph.belongs_to.get(served.name, {})
    return {fk: target for fk, target in rels.values()}


def has_many(site: Site, served: Served) -> list[tuple[str, str, str, bool]]:
    """(relation name, child store, foreign key, at most one) of ``served``."""
    rels = site.graph.has_many.get(served.name, {})
    return [(name, target, fk, one) for name, (target, fk, one) in rels.items()]


async def index(site: Site, request: Request) -> Response:
    stores = []
    for served in site.api.served.values():
        try:
            store = site.store(request, served)
        except PersistyError:
            continue
        if site.can(store, "read"):
            stores.append(
                {
                    "name": served.name,
                    "description": served.meta.description or "",
                    "create": site.can(store, "create"),
                }
            )
    return site.render(request, "index.html", stores=stores)


def _columns(site: Site, store: Any, served: Served) -> tuple[list[Any], set[str]]:
    attrs = site.readable(store, served)
    columns = [a for a in attrs if not is_large(a)]
    sortable = {a.name for a in columns if a.sortable and a.ordered}
    return columns, sortable


async def list_page(site: Site, request: Request) -> Response:
    served = site.served(request.path_params["store"])
    store = site.store(request, served)
    if not site.can(store, "read"):
        raise Forbidden(f"you may not read {served.name} items")
    zone = site.zone(request)
    clean = clean_query(request, served, zone)
    if clean is not None:
        base = f"{site.base(request)}/{served.name}"
        return RedirectResponse(base + ("?" + clean if clean else ""), status_code=303)
    columns, sortable = _columns(site, store, served)
    links = belongs_to(site, served)
    state = ListState([], None, DEFAULT_PAGE_SIZE, None, [])
    error: PersistyError | None = None
    rows: list[dict[str, Any]] = []
    count: tuple[int, bool] | None = None
    next_key: str | None = None
    try:
        state = list_state(request)
        check_order(state.order, sortable)
        f = state_filter(site, state)
        page = await store.search(f, state.order, state.limit, state.page_key)
        count = await capped_count(store, f)
        next_key = page.next_page_key
    except ValidationError as e:
        error = e
    else:
        meta = served.meta
        for item in page.items:
            key = meta.key_of(item)
            cells = []
            for a in columns:
                value = getattr(item, a.name, None)
                href = None
                if a.name in links and value is not None:
                    href = site.link(request, links[a.name], str(value))
                cells.append(
                    {
                        "text": display(a, value, zone, cell=True),
                        "href": href,
                        "kind": a.kind,
                        "empty": value is None,
                    }
                )
            rows.append({"key": key, "href": site.link(request, served.name, key), "cells": cells})
    headers = []
    for a in columns:
        sort = None
        direction = None
        if a.name in sortable:
            if state.order == a.name:
                direction, sort = "ascending", "-" + a.name
            elif state.order == "-" + a.name:
                direction, sort = "descending", a.name
            else:
                sort = a.name
        headers.append(
            {
                "name": a.name,
                "href": "?" + state.query(order=sort, page_key=None, prev=[]) if sort else None,
                "direction": direction,
            }
        )
    pager = {
        "next": "?" + state.query(page_key=next_key, prev=[*state.prev, state.page_key or ""])
        if next_key
        else None,
        "previous": "?" + state.query(page_key=state.prev[-1] or None, prev=state.prev[:-1])
        if state.prev
        else ("?" + state.query(page_key=None, prev=[]) if state.page_key else None),
    }
    patchable = [
        a
        for a in site.readable(store, served)
        if a.name in served.patch_attrs
        and site.writable(store, a.name)
        and widget_kind(a, None) not in ("json",)
    ]
    here_query = state.query()
    return site.render(
        request,
        "list.html",
        status=error.status if error else 200,
        served=served,
        error=error,
        headers=headers,
        rows=rows,
        count=count,
        pager=pager,
        panel=filter_panel(served, columns, state, zone),
        q=dict(state.filter_pairs).get("q", ""),
        order=state.order or "",
        limit=state.limit,
        sizes=[(n, "?" + state.query(limit=n, page_key=None, prev=[])) for n in PAGE_SIZES],
        has_datetime=any(a.kind == "datetime" for a in columns),
        export_query=state.query(page_key=None, prev=[]),
        here_query=here_query,
        can_create=site.can(store, "create"),
        can_delete=site.can(store, "delete"),
        can_update=site.can(store, "update"),
        patchable=[a.name for a in patchable],
        filtered=bool(state.filter_pairs),
    )


async def bulk(site: Site, request: Request) -> Response:
    served = site.served(request.path_params["store"])
    form = await site.form(request)
    store = site.store(request, served)
    back = safe_next((form.get("_back") or [""])[-1], site.base(request))
    keys = list(dict.fromkeys(form.get("key", [])))
    if not keys:
        return site.redirect(request, back, "Select the items first.")
    if len(keys) > MAX_BATCH:
        raise ValidationError(f"at most {MAX_BATCH} items at once", field="key")
    for k in keys:
        served.meta.parse_key(k)
    action = (form.get("action") or [""])[-1]
    if action == "delete":
        if (form.get("confirm") or [""])[-1] != "yes":
            return site.render(request, "confirm_bulk.html", served=served, keys=keys, back=back)
        return site.redirect(request, back, await bulk_delete(store, keys))
    if action == "patch":
        name = (form.get("_patch_attr") or [""])[-1]
        if name not in served.patch_attrs or not site.writable(store, name):
            raise ValidationError(f"{served.name}.{name} cannot be changed here", field=name)
        a = served.meta.attr(name)
        w = Widget(a, widget_kind(a, None), required=not a.optional)
        text = (form.get("_patch_value") or [""])[-1]
        raw = (
            ["true"]
            if w.kind == "checkbox" and text.strip().lower() in ("true", "yes", "1", "on")
            else [text]
        )
        value = parse(w, raw, site.zone_named((form.get("_tz") or [""])[-1]))
        check_values(served.meta, {name: value})
        return site.redirect(request, back, await bulk_patch(store, keys, {name: value}))
    raise ValidationError("choose delete or patch", field="action")


async def export_page(site: Site, request: Request) -> Response:
    served = site.served(request.path_params["store"])
    store = site.store(request, served)
    fmt = request.query_params.get("format", "csv")
    if fmt not in ("csv", "jsonl"):
        raise ValidationError("format must be csv or jsonl", field="format")
    _, sortable = _columns(site, store, served)
    state = list_state(request)
    state.filter_pairs = [(k, v) for k, v in state.filter_pairs if k != "format"]
    check_order(state.order, sortable)
    f = state_filter(site, state)
    await store.search(f, state.order, 1, None)  # a bad filter fails here, not mid-stream
    return export(site, served, store, f, state.order, site.readable(store, served), fmt)


async def suggest(site: Site, request: Request) -> Response:
    """Up to 20 keys (with a label) of the items matching what was typed: the relation
    picker's type-ahead, never a list of every item."""
    served = site.served(request.path_params["store"])
    store = site.store(request, served)
    text = request.query_params.get("q", "")[:200]
    meta = served.meta
    label = _label_attr(served)
    f: Filter | None = None
    if text:
        terms: list[Filter] = []
        if len(meta.key_attrs) == 1 and meta.key_attrs[0].kind == "str":
            terms.append(F[meta.key_attrs[0].name].istartswith(text))
        if label is not None:
            terms.append(F[label].icontains(text))
        f = Or.of(*terms) if terms else TextQuery(text)
    page = await store.search(f, None, SUGGESTIONS, None)
    zone = site.zone(request)
    out = []
    for item in page.items:
        key = meta.key_of(item)
        text_label = display(meta.attr(label), getattr(item, label), zone) if label else ""
        out.append({"key": key, "label": text_label})
    return JSONResponse({"items": out})


def _label_attr(served: Served) -> str | None:
    meta = served.meta
    names = [meta.label, *meta.summary] if meta.label else list(meta.summary)
    names += ["title", "name", "label"]
    for n in names:
        a = meta.by_name.get(n) if n else None
        if a is not None and a.kind == "str" and a.readable and n not in meta.key.attrs:
            return a.name
    return None


def form_widgets(site: Site, store: Any, served: Served, shape: str) -> list[Widget]:
    return widgets(
        served.meta,
        shape,
        relations=belongs_to(site, served),
        writable=lambda n: site.writable(store, n),
        forced=set(site.forced(store)) if shape == "create" else set(),
        readable={a.name for a in site.readable(store, served)},
    )
