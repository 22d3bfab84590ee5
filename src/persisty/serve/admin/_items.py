"""One item: its detail page, the create and edit forms (per-field errors keeping every typed
value, 412 on a stale form) and the delete confirmation with what the relations layer does."""

from __future__ import annotations

import dataclasses
import zoneinfo
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from persisty.errors import (
    Conflict,
    Forbidden,
    NotFound,
    PersistyError,
    PreconditionFailed,
    ValidationError,
)
from persisty.model import meta_of, references_to
from persisty.query import F
from persisty.serve._api import Served, check_values
from persisty.serve.admin._fields import MISSING, Widget, display, input_value, parse
from persisty.serve.admin._listing import COUNT_CAP
from persisty.serve.admin._pages import belongs_to, form_widgets, has_many
from persisty.serve.admin._site import Site


def _key(served: Served, request: Request) -> str:
    key: str = request.path_params["key"]
    served.meta.parse_key(key)
    return key


async def _item(site: Site, store: Any, served: Served, key: str) -> Any:
    item = await store.read(key)
    if item is None:
        raise NotFound(f"no {served.name} with key {key!r}")
    return item


def _capped(n: int, more: bool) -> str:
    return "1,000+" if more else f"{n:,}"


def _plural(name: str, n: int, more: bool) -> str:
    return name if n == 1 and not more else name + "s"


async def detail(site: Site, request: Request) -> Response:
    served = site.served(request.path_params["store"])
    store = site.store(request, served)
    key = _key(served, request)
    item = await _item(site, store, served, key)
    zone = site.zone(request)
    links = belongs_to(site, served)
    fields = []
    for a in site.readable(store, served):
        value = getattr(item, a.name, None)
        href = (
            site.link(request, links[a.name], str(value))
            if (a.name in links and value is not None)
            else None
        )
        fields.append(
            {
                "name": a.name,
                "kind": a.kind,
                "text": display(a, value, zone),
                "href": href,
                "empty": value is None,
                "block": a.kind in ("dict", "struct", "any", "list")
                or (a.kind == "str" and isinstance(value, str) and "\n" in value),
            }
        )
    related = []
    for name, target, fk, one in has_many(site, served):
        try:
            child = site.store(request, site.served(target))
            page = await child.search(F[fk] == key, None, COUNT_CAP, None)
        except PersistyError:
            continue
        related.append(
            {
                "name": name,
                "store": target,
                "one": one,
                "count": _capped(len(page.items), page.next_page_key is not None),
                "href": f"{site.base(request)}/{target}?{fk}={_q(key)}",
            }
        )
    can_delete = site.can(store, "delete")
    return site.render(
        request,
        "detail.html",
        served=served,
        key=key,
        fields=fields,
        related=related,
        item_url=site.link(request, served.name, key),
        etag=site.api.etag(served, item),
        can_update=site.can(store, "update"),
        can_delete=can_delete,
        effects=await delete_effects(site, request, served, key) if can_delete else [],
    )


def _q(text: str) -> str:
    from urllib.parse import quote

    return quote(text, safe="")


async def delete_effects(
    site: Site, request: Request, served: Served, key: str
) -> list[dict[str, Any]]:
    """What deleting ``key`` does to the items that refer to it, as the relations layer
    will do it (counts capped at 1,000, as the caller sees the other stores)."""
    out = []
    for ref in references_to(served.cls):
        child = meta_of(ref.child)
        view = site.api._related_view(request, ref.child)
        page = await view.search(F[ref.foreign_key] == key, None, COUNT_CAP, None)
        n, more = len(page.items), page.next_page_key is not None
        if not n:
            continue
        noun = _plural(child.name, n, more)
        text = {
            "cascade": f"also deletes {_capped(n, more)} {noun}",
            "set_null": f"clears {child.name}.{ref.foreign_key} on {_capped(n, more)} {noun}",
        }.get(ref.on_delete, f"blocked by {_capped(n, more)} {noun}")
        href = (
            f"{site.base(request)}/{child.name}?{ref.foreign_key}={_q(key)}"
            if child.name in site.api.served
            else None
        )
        out.append(
            {"text": text, "blocked": ref.on_delete not in ("cascade", "set_null"), "href": href}
        )
    return out


# ---- forms ----------------------------------------------------------------------------------


def _defaults(served: Served) -> dict[str, Any]:
    out = {}
    for f in dataclasses.fields(served.cls):
        if f.default is not dataclasses.MISSING and f.default is not None:
            out[f.name] = f.default
    return out


def _fields(
    ws: list[Widget],
    values: dict[str, Any] | None,
    raw: dict[str, list[str]] | None,
    errors: dict[str, str],
    zone: zoneinfo.ZoneInfo,
    current: Any = None,
) -> list[dict[str, Any]]:
    """What the form template shows per field: the typed text (``raw``) or the item's value,
    its error and, for a stale form, the value stored now."""
    out = []
    for w in ws:
        if raw is not None and not w.readonly:
            texts = raw.get(w.name)
            text = (texts or [""])[-1]
            checked = "true" in (texts or [])
        else:
            value = (values or {}).get(w.name)
            text = input_value(w, value, zone)
            checked = value is True
        shown_now = None
        if current is not None:
            now = getattr(current, w.name, None)
            shown_now = display(w.attr, now, zone)
        out.append(
            {
                "w": w,
                "text": text,
                "checked": checked,
                "error": errors.get(w.name),
                "current": shown_now,
            }
        )
    return out


def collect(
    served: Served, ws: list[Widget], form: dict[str, list[str]], zone: zoneinfo.ZoneInfo
) -> tuple[dict[str, Any], dict[str, str]]:
    """The values in ``form`` for the editable widgets, and an error per bad field (every
    field is checked, by the same validation the store runs)."""
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for w in ws:
        if w.readonly:
            continue
        try:
            value = parse(w, form.get(w.name), zone)
            if value is MISSING:
                continue
            check_values(served.meta, {w.name: value})
        except ValidationError as e:
            errors[w.name] = _message(e)
            continue
        values[w.name] = value
    return values, errors


def _message(e: PersistyError) -> str:
    text = str(e)
    head, sep, rest = text.partition(": ")
    return rest if sep and " " not in head else text


def _form(
    site: Site,
    request: Request,
    served: Served,
    *,
    shape: str,
    fields: Any,
    status: int = 200,
    error: str | None = None,
    key: str | None = None,
    etag: str | None = None,
    stale: bool = False,
) -> Response:
    return site.render(
        request,
        "form.html",
        status=status,
        served=served,
        shape=shape,
        item_url=site.link(request, served.name, key) if key is not None else None,
        fields=fields,
        error=error,
        key=key,
        etag=etag,
        stale=stale,
        first_error=next((f["w"].name for f in fields if f["error"]), None),
    )


async def create_page(site: Site, request: Request) -> Response:
    served = site.served(request.path_params["store"])
    store = site.store(request, served)
    zone = site.zone(request)
    ws = form_widgets(site, store, served, "create")
    if request.method == "GET":
        if not site.can(store, "create"):
            raise Forbidden(f"you may not create {served.name} items")
        return _form(
            site,
            request,
            served,
            shape="create",
            fields=_fields(ws, _defaults(served), None, {}, zone),
        )
    form = await site.form(request)
    zone = site.zone_named((form.get("_tz") or [""])[-1])
    values, errors = collect(served, ws, form, zone)
    status, banner = 422, None
    if not errors:
        try:
            item = await store.create(values)
        except (ValidationError, Conflict, Forbidden) as e:
            status = e.status
            if e.field and any(w.name == e.field for w in ws):
                errors[e.field] = _message(e)
            else:
                banner = str(e)
        else:
            key = served.meta.key_of(item)
            return site.redirect(
                request, site.link(request, served.name, key), f"Created {served.name} {key}."
            )
    return _form(
        site,
        request,
        served,
        shape="create",
        status=status,
        error=banner,
        fields=_fields(ws, None, form, errors, zone),
    )


async def edit_page(site: Site, request: Request) -> Response:
    served = site.served(request.path_params["store"])
    store = site.store(request, served)
    key = _key(served, request)
    zone = site.zone(request)
    ws = form_widgets(site, store, served, "update")
    for w in ws:
        if w.name not in served.patch_attrs:
            w.readonly = True
    if request.method == "GET":
        item = await _item(site, store, served, key)
        return _form(
            site,
            request,
            served,
            shape="update",
            key=key,
            etag=site.api.etag(served, item),
            fields=_fields(ws, {w.name: getattr(item, w.name, None) for w in ws}, None, {}, zone),
        )
    form = await site.form(request)
    zone = site.zone_named((form.get("_tz") or [""])[-1])
    tag = (form.get("_etag") or [""])[-1]
    current = await _item(site, store, served, key)
    stored_values = {w.name: getattr(current, w.name, None) for w in ws}
    values, errors = collect(served, ws, form, zone)
    status, banner = 422, None
    if not errors:
        (pinned,) = await site.api.store_tags(served, store, [(key, tag)])
        try:
            await store.patch(key, values, if_match=pinned)
        except PreconditionFailed:
            now = await _item(site, store, served, key)
            return _form(
                site,
                request,
                served,
                shape="update",
                key=key,
                status=412,
                stale=True,
                etag=site.api.etag(served, now),
                error="This item changed since you opened it: nothing was saved. The "
                "values stored now are shown beside yours; save again to replace them.",
                fields=_fields(
                    ws,
                    {w.name: getattr(now, w.name, None) for w in ws},
                    form,
                    {},
                    zone,
                    current=now,
                ),
            )
        except (ValidationError, Conflict, Forbidden) as e:
            status = e.status
            if e.field and any(w.name == e.field for w in ws):
                errors[e.field] = _message(e)
            else:
                banner = str(e)
        else:
            return site.redirect(
                request, site.link(request, served.name, key), f"Saved {served.name} {key}."
            )
    merged = {**stored_values}
    return _form(
        site,
        request,
        served,
        shape="update",
        key=key,
        status=status,
        error=banner,
        etag=tag,
        fields=_fields(ws, merged, form, errors, zone),
    )


async def delete_page(site: Site, request: Request) -> Response:
    served = site.served(request.path_params["store"])
    store = site.store(request, served)
    key = _key(served, request)
    if request.method == "GET":
        item = await _item(site, store, served, key)
        return site.render(
            request,
            "confirm_delete.html",
            served=served,
            key=key,
            item_url=site.link(request, served.name, key),
            etag=site.api.etag(served, item),
            error=None,
            effects=await delete_effects(site, request, served, key),
        )
    form = await site.form(request)
    tag = (form.get("_etag") or [""])[-1]
    await _item(site, store, served, key)
    (pinned,) = await site.api.store_tags(served, store, [(key, tag)])
    try:
        await store.delete(key, if_match=pinned)
    except (PreconditionFailed, Conflict, Forbidden) as e:
        item = await _item(site, store, served, key)
        text = (
            "This item changed since you opened it: nothing was deleted. Check it "
            "and confirm again."
            if isinstance(e, PreconditionFailed)
            else str(e)
        )
        return site.render(
            request,
            "confirm_delete.html",
            status=e.status,
            served=served,
            key=key,
            etag=site.api.etag(served, item),
            error=text,
            item_url=site.link(request, served.name, key),
            effects=await delete_effects(site, request, served, key),
        )
    return site.redirect(
        request, f"{site.base(request)}/{served.name}", f"Deleted {served.name} {key}."
    )
