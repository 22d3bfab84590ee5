"""The file routes: download (GET/HEAD with ranges and conditional requests, signed URLs,
S3 redirects), streaming PUT, DELETE, list, count and copy under
``{prefix}/_files/{store}``. Uploads by grant are in ``_files_uploads``."""

from __future__ import annotations

import base64
import binascii
import dataclasses
import re
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse
from starlette.routing import BaseRoute

from persisty.errors import Conflict, NotFound, PreconditionFailed, ValidationError
from persisty.files import FileInfo, check_key
from persisty.query import ALL, PAGING_WORDS, Filter, filter_from_query
from persisty.serve._api import JSONResponse, read_json
from persisty.serve._files_access import (
    DISPOSITIONS,
    INLINE_SAFE,
    Access,
    FileMount,
    access,
    check_filter,
    check_signature,
    check_write,
    file_route,
    render,
    render_all,
)
from persisty.serve._files_ranges import Multipart, evaluate, http_date, parse_range
from persisty.serve._files_uploads import upload_routes
from persisty.serve._limits import PayloadTooLarge, check_query_json

_DIGEST = re.compile(r"(?:^|,)\s*sha-256\s*=\s*:([A-Za-z0-9+/=]+):", re.IGNORECASE)


def _json(content: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse(content, status_code=status, headers=headers)


def disposition_header(kind: str, filename: str) -> str:
    """``Content-Disposition`` with an ASCII ``filename`` and, for other names, the RFC 8187
    ``filename*`` (browsers prefer it; the plain one is the fallback).

    Example::

        disposition_header("attachment", "résumé.pdf")
        # 'attachment; filename="r_sum_.pdf"; filename*=UTF-8\\'\\'r%C3%A9sum%C3%A9.pdf'
    """
    plain = "".join(c if 32 <= ord(c) < 127 and c not in '"\\' else "_" for c in filename)
    header = f'{kind}; filename="{plain}"'
    if plain != filename:
        header += f"; filename*=UTF-8''{quote(filename, safe='')}"
    return header


def inline_safe(content_type: str) -> bool:
    """Whether a browser may show this type in the page (never HTML, SVG or XML)."""
    return content_type.split(";")[0].strip().lower() in INLINE_SAFE


def file_headers(info: FileInfo, disposition: str) -> dict[str, str]:
    """The headers of a download of ``info`` (without the length and range ones)."""
    kind = (
        "inline"
        if disposition in ("auto", "inline") and inline_safe(info.content_type)
        else "attachment"
    )
    headers = {
        "ETag": f'"{info.etag}"',
        "Last-Modified": http_date(info.updated_at),
        "Accept-Ranges": "bytes",
        "Content-Type": info.content_type,
        "Content-Disposition": disposition_header(
            kind, info.filename or info.key.rsplit("/", 1)[-1]
        ),
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "private, no-cache",
    }
    if kind == "inline":
        headers["Content-Security-Policy"] = "sandbox"
    return headers


def _key(request: Request) -> str:
    return check_key(request.path_params["key"])


async def download(api: Any, mount: FileMount, request: Request) -> Response:
    key = _key(request)
    params = request.query_params
    signed = any(name in params for name in ("exp", "v", "sig"))
    if signed:
        etag, disposition = await check_signature(mount, key, params)
        info = await current(mount, key)
        if info is None or info.etag != etag:
            raise NotFound(f"no file {key!r}", field="key")
    else:
        acc = access(api, request, mount)
        found = await current(mount, key)
        info = acc.visible(key, found)
        disposition = params.get("disposition", "auto")
        if disposition not in DISPOSITIONS:
            raise ValidationError("disposition is auto, attachment or inline", field="disposition")
    headers = file_headers(info, disposition)
    conditions = evaluate(request.headers.get, request.method, headers["ETag"], info.updated_at)
    if conditions.status == 304:
        keep = ("ETag", "Last-Modified", "Cache-Control")
        return Response(status_code=304, headers={k: headers[k] for k in keep})
    if conditions.status == 412:
        raise PreconditionFailed("the file does not match the precondition")
    if mount.redirect and request.method == "GET" and not mount.files.blobs.hosted:
        url = await mount.files.blobs.presign_download(
            info.blob, 300, info.content_type, headers["Content-Disposition"]
        )
        if url is not None:
            return RedirectResponse(
                url, status_code=302, headers={"Cache-Control": "private, no-store"}
            )
    ranges: list[tuple[int, int]] = []
    header = request.headers.get("range")
    if header is not None and conditions.use_range:
        ranges = parse_range(header, info.size)
    blobs = mount.files.blobs
    head_only = request.method == "HEAD"
    if not ranges:
        headers["Content-Length"] = str(info.size)
        if head_only:
            return Response(status_code=200, headers=headers)
        return _Stream(_pieces(blobs, info, [(0, info.size)]), headers=headers)
    if len(ranges) == 1:
        start, end = ranges[0]
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{info.size}"
        headers["Content-Length"] = str(end - start)
        if head_only:
            return Response(status_code=206, headers=headers)
        return _Stream(_pieces(blobs, info, ranges), status_code=206, headers=headers)
    body = Multipart(ranges, info.size, info.content_type)
    headers["Content-Type"] = body.content_type
    headers["Content-Length"] = str(body.length)
    if head_only:
        return Response(status_code=206, headers=headers)
    return _Stream(_multipart(blobs, info, body), status_code=206, headers=headers)


class _Stream(StreamingResponse):
    """A streamed body whose Content-Type is exactly the file's (no charset appended)."""

    def init_headers(self, headers: Any = None) -> None:
        super().init_headers(headers)
        self.raw_headers = [(k, v) for k, v in self.raw_headers if k != b"content-type"]
        self.raw_headers.append((b"content-type", headers["Content-Type"].encode("latin-1")))


async def _pieces(
    blobs: Any, info: FileInfo, ranges: list[tuple[int, int]]
) -> AsyncIterator[bytes]:
    for start, end in ranges:
        async for piece in blobs.read(info.blob, start, end):
            yield piece


async def _multipart(blobs: Any, info: FileInfo, body: Multipart) -> AsyncIterator[bytes]:
    for start, end in body.ranges:
        yield body.head(start, end)
        async for piece in blobs.read(info.blob, start, end):
            yield piece
        yield b"\r\n"
    yield body.tail


async def current(mount: FileMount, key: str) -> FileInfo | None:
    """The catalog record of ``key`` (``None`` when there is no such file)."""
    return (await mount.files.info_batch([key]))[0]


def _etag_value(header: str | None, name: str) -> str | None:
    """The one etag of an ``If-Match`` / ``If-None-Match`` header (``*`` kept)."""
    if header is None:
        return None
    tag = header.strip()
    if tag == "*":
        return tag
    if tag.startswith("W/"):
        raise ValidationError(f"{name} takes a strong etag", field=name)
    if len(tag) < 2 or tag[0] != '"' or tag[-1] != '"' or "," in tag:
        raise ValidationError(f"{name} takes one quoted etag or *", field=name)
    return tag[1:-1]


def _content_digest(header: str | None) -> str | None:
    if header is None:
        return None
    found = _DIGEST.search(header)
    if found is None:
        raise ValidationError("Content-Digest needs sha-256=:<base64>:", field="Content-Digest")
    try:
        raw = base64.b64decode(found.group(1), validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        raise ValidationError(
            "Content-Digest sha-256 is 32 bytes in base64", field="Content-Digest"
        )
    return raw.hex()


async def upload(api: Any, mount: FileMount, request: Request) -> Response:
    key = _key(request)
    acc = access(api, request, mount)
    limit, too_large = mount.put_limit(request)
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise PayloadTooLarge(too_large)
    if_match = _etag_value(request.headers.get("if-match"), "If-Match")
    if_none = _etag_value(request.headers.get("if-none-match"), "If-None-Match")
    if if_none not in (None, "*"):
        raise ValidationError("If-None-Match takes only * on a PUT", field="If-None-Match")
    expected = _content_digest(request.headers.get("content-digest"))
    content_type = request.headers.get("content-type")
    found = await current(mount, key)
    if found is not None and not acc.can("read", found):
        current_visible = None
        if if_match is None:
            raise NotFound(f"no file {key!r}", field="key")
    else:
        current_visible = found
    if if_none == "*" and found is not None:
        raise PreconditionFailed(f"file {key!r} exists", field="If-None-Match")
    if if_match is not None and (
        current_visible is None or if_match not in ("*", current_visible.etag)
    ):
        raise PreconditionFailed(f"file {key!r} does not have that etag", field="If-Match")
    check_write(
        acc, mount, key, current_visible, **({"content_type": content_type} if content_type else {})
    )

    async def body() -> AsyncIterator[bytes]:
        seen = 0
        async for piece in request.stream():
            seen += len(piece)
            if seen > limit:
                raise PayloadTooLarge(too_large)
            if piece:
                yield piece

    try:
        info = await mount.files.put(
            key,
            body(),
            content_type=content_type,
            expected_sha256=expected,
            if_match=if_match
            if if_match is not None
            else (found.etag if found is not None else None),
            if_none_match="*" if found is None else None,
            owner=acc.owner,
        )
    except ValidationError as e:
        if getattr(e, "code", None) == "digest_mismatch":
            e.status = 400
            e.field = "Content-Digest"
        if getattr(e, "code", None) == "file_too_large":
            raise PayloadTooLarge(too_large) from None
        raise
    except PreconditionFailed:
        if if_match is None and if_none is None:  # a concurrent writer won: say so
            raise Conflict(f"file {key!r} changed while it was uploaded") from None
        raise
    out = await render(api, request, mount, info)
    return _json(out, 201 if found is None else 200, {"ETag": f'"{info.etag}"'})


async def remove(api: Any, mount: FileMount, request: Request) -> Response:
    key = _key(request)
    acc = access(api, request, mount)
    if_match = _etag_value(request.headers.get("if-match"), "If-Match")
    found = acc.visible(key, await current(mount, key))
    if not acc.can("delete", found):
        raise acc.forbid("deleting this file")
    if if_match is not None and if_match not in ("*", found.etag):
        raise PreconditionFailed(f"file {key!r} does not have that etag", field="If-Match")
    await mount.files.delete(key, if_match=found.etag)
    return Response(status_code=204)


_RESERVED = PAGING_WORDS | {"prefix"}
_ORDERABLE = frozenset({"key", "size", "content_type", "created_at", "updated_at", "owner"})


def _listing(api: Any, request: Request, acc: Access) -> tuple[Filter | None, str]:
    """The filter (the caller's own, and its policy's) and prefix of a list or count."""
    pairs = request.query_params.multi_items()
    check_query_json(pairs, api.limits)
    for name in _RESERVED:
        if len(request.query_params.getlist(name)) > 1:
            raise ValidationError(f"{name} is given twice", field=name)
    given = [(k, v) for k, v in pairs if k not in _RESERVED]
    f = filter_from_query(given) if given else None
    check_filter(f)
    if acc.read is not ALL:
        f = acc.read if f is None else f & acc.read
    return f, request.query_params.get("prefix", "")


def _page_size(text: str | None, api: Any) -> int:
    if text is None:
        return min(100, int(api.max_limit))
    if not text.isdigit() or not 1 <= int(text) <= api.max_limit:
        raise ValidationError(f"limit must be between 1 and {api.max_limit}", field="limit")
    return int(text)


async def listing(api: Any, mount: FileMount, request: Request) -> Response:
    acc = access(api, request, mount)
    f, prefix = _listing(api, request, acc)
    params = request.query_params
    order = params.get("order")
    if order is not None:
        for name in order.split(","):
            if name.strip().lstrip("+-") not in _ORDERABLE:
                raise ValidationError(f"files cannot be ordered by {name.strip()!r}", field="order")
    page = await mount.files.list(
        prefix,
        filter=f,
        order=order,
        limit=_page_size(params.get("limit"), api),
        page_key=params.get("page_key"),
    )
    items = await render_all(api, request, mount, page.items)
    return _json({"items": items, "next_page_key": page.next_page_key})


async def counting(api: Any, mount: FileMount, request: Request) -> Response:
    acc = access(api, request, mount)
    f, prefix = _listing(api, request, acc)
    return _json({"count": await mount.files.count(f, prefix=prefix)})


async def copying(api: Any, mount: FileMount, request: Request) -> Response:

    acc = access(api, request, mount)
    data = await read_json(request, api.limits)
    if not isinstance(data, dict) or set(data) - {"from", "to"}:
        raise ValidationError('the body is {"from": key, "to": key}', field="from")
    src = check_key(data.get("from"), "from")
    dst = check_key(data.get("to"), "to")
    source = acc.visible(src, await current(mount, src))
    target = await current(mount, dst)
    if target is not None and not acc.can("read", target):
        raise NotFound(f"no file {dst!r}", field="to")
    check_write(
        acc,
        mount,
        dst,
        target,
        size=source.size,
        content_type=source.content_type,
        etag=source.etag,
    )
    copied = await mount.files.copy(src, dst)
    if acc.owner is not None and copied.owner != acc.owner:
        copied = await mount.files.catalog.update(dataclasses.replace(copied, owner=acc.owner))
    return _json(
        await render(api, request, mount, copied),
        201 if target is None else 200,
        {"ETag": f'"{copied.etag}"'},
    )


def file_routes(api: Any, mounts: dict[str, FileMount]) -> list[BaseRoute]:
    """Every route of every file mount (uploads included)."""

    out: list[BaseRoute] = []
    for mount in mounts.values():
        base = f"{api.prefix}/_files/{mount.name}"
        out += [
            file_route(base, api, mount, {"GET": listing}),
            file_route(base + "/_count", api, mount, {"GET": counting}),
            file_route(base + "/_copy", api, mount, {"POST": copying}),
            *upload_routes(api, mount, base),
            file_route(
                base + "/{key:path}", api, mount, {"GET": download, "PUT": upload, "DELETE": remove}
            ),
        ]
    return out
