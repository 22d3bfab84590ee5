"""Upload grants over HTTP: ``POST …/_uploads`` (the caller's ``create``/``update`` right is
checked before any URL exists), the hosted backends' targets (``POST …/_uploads/{id}`` for
a form, ``PUT …/_uploads/{id}/{n}?token=…`` for a part), status, completion and abort.

On S3 the grant is a presigned POST or presigned part URLs: the bytes go to the bucket and
only ``_complete`` comes back here.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import AsyncIterator
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from persisty.errors import NotFound, PersistyError, ValidationError
from persisty.files import FileUpload, UploadGrant, check_key, part_blob
from persisty.serve._api import JSONResponse, read_json
from persisty.serve._files_access import (
    LAMBDA_MAX_BODY,
    FileMount,
    access,
    candidate,
    check_write,
    file_route,
    mount_path,
    render,
)
from persisty.serve._files_form import FormReader, boundary_of
from persisty.serve._limits import PayloadTooLarge

FORM_OVERHEAD = 64 * 1024  # the fields and part headers around a form's file
_GRANT_FIELDS = frozenset(
    {"key", "prefix", "size", "content_type", "filename", "sha256", "part_size", "expires_in"}
)


def _json(content: Any, status: int = 200) -> Response:
    return JSONResponse(content, status_code=status)


def _rebase(url: str, mount: FileMount, api: Any, request: Request) -> str:
    """A hosted grant's URL under this mount's path (the file store signs it under its own
    ``base_url``)."""
    base = mount.files.base_url
    if url.startswith(base + "/_uploads/"):
        return mount_path(api, request, mount) + url[len(base) :]
    return url


def grant_json(grant: UploadGrant, mount: FileMount, api: Any, request: Request) -> dict[str, Any]:
    """What a client needs of a grant: where and how to send the bytes."""
    return {
        "upload_id": grant.upload_id,
        "key": grant.key,
        "method": grant.method,
        "url": _rebase(grant.url, mount, api, request) if grant.url else "",
        "fields": grant.fields,
        "parts": [
            {
                "part_number": p.part_number,
                "size": p.size,
                "url": _rebase(p.url, mount, api, request),
            }
            for p in grant.parts
        ],
        "expires_at": grant.expires_at,
        "complete_url": f"{mount_path(api, request, mount)}/_uploads/{grant.upload_id}/_complete",
    }


def _int(data: dict[str, Any], name: str, *, required: bool = False) -> int | None:
    value = data.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValidationError(f"{name} is a number of bytes", field=name)
    return value


def _str(data: dict[str, Any], name: str, *, required: bool = False) -> str | None:
    value = data.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise ValidationError(f"{name} is a string", field=name)
    return value


async def begin(api: Any, mount: FileMount, request: Request) -> Response:

    acc = access(api, request, mount)
    if not (acc.allows_any("create") or acc.allows_any("update")):
        raise acc.forbid("uploading files")
    data = await read_json(request, api.limits)
    if not isinstance(data, dict):
        raise ValidationError("the body is a JSON object", field="size")
    for name in data:
        if name not in _GRANT_FIELDS:
            raise ValidationError(f"an upload grant has no {name!r}", field=name)
    grant = await begin_upload(
        api,
        mount,
        acc,
        key=_str(data, "key"),
        prefix=_str(data, "prefix"),
        size=_int(data, "size", required=True) or 0,
        content_type=_str(data, "content_type", required=True) or "",
        filename=_str(data, "filename"),
        sha256=_str(data, "sha256"),
        part_size=_int(data, "part_size"),
        expires_in=_int(data, "expires_in"),
        on_lambda="aws.event" in request.scope,
    )
    return _json(grant_json(grant, mount, api, request), 201)


async def begin_upload(
    api: Any,
    mount: FileMount,
    acc: Any,
    *,
    key: str | None,
    prefix: str | None,
    size: int,
    content_type: str,
    filename: str | None = None,
    sha256: str | None = None,
    part_size: int | None = None,
    expires_in: int | None = None,
    on_lambda: bool = False,
) -> UploadGrant:
    """A grant for the caller, after its policy allowed the write (shared with GraphQL).

    Behind Lambda a hosted backend's targets are the function itself, so a form or a part
    must fit what API Gateway passes to it (S3 grants go to the bucket and need not)."""
    piece = part_size if part_size is not None else size
    if on_lambda and mount.files.blobs.hosted and piece > LAMBDA_MAX_BODY:
        raise ValidationError(
            f"behind Lambda, an upload to this file store goes through the function: a form "
            f"or a part is at most {LAMBDA_MAX_BODY} bytes (give a smaller part_size)",
            field="part_size",
        )
    if key is not None:
        key = check_key(key)
        found = (await mount.files.info_batch([key]))[0]
        if found is not None and not acc.can("read", found):
            raise NotFound(f"no file {key!r}", field="key")
        check_write(acc, mount, key, found, size=size, content_type=content_type)
    elif not acc.can(
        "create",
        candidate(
            mount, (prefix or "") + "x", None, acc.owner, size=size, content_type=content_type
        ),
    ):
        raise acc.forbid("creating files here")
    return await mount.files.upload_grant(
        key,
        prefix=prefix,
        size=size,
        content_type=content_type,
        sha256=sha256,
        part_size=part_size,
        filename=filename,
        owner=acc.owner,
        expires_in=expires_in,
    )


async def _record(api: Any, mount: FileMount, request: Request) -> FileUpload:
    """The caller's upload named in the path (another caller's answers as missing)."""
    acc = access(api, request, mount)
    upload_id = request.path_params["upload_id"]
    record = await mount.files.uploads.read(upload_id)
    if (
        record is None
        or record.store != mount.files.name
        or (acc.owner is not None and record.owner != acc.owner)
        or not (acc.allows_any("create") or acc.allows_any("update"))
    ):
        raise NotFound(f"no upload {upload_id!r}", field="upload_id")
    return record


async def _s3_progress(blobs: Any, record: FileUpload) -> tuple[int, list[dict[str, int]]]:
    """What S3 holds of a pending upload: the parts S3 lists (multipart), or the staged
    object's size (a form); nothing when S3 cannot say."""
    key = blobs.staging(record)
    try:
        if record.part_size is not None and record.multipart_id:
            listed = await blobs.client.call(
                "list_parts", Bucket=blobs.bucket, Key=key, UploadId=record.multipart_id
            )
            parts = [
                {"part_number": int(p["PartNumber"]), "size": int(p["Size"])}
                for p in listed.get("Parts", [])
            ]
            return sum(p["size"] for p in parts), parts
        head = await blobs.client.call("head_object", Bucket=blobs.bucket, Key=key)
        return int(head.get("ContentLength", 0)), []
    except (PersistyError, OSError, KeyError, ValueError):
        return 0, []
    except Exception as e:  # botocore's ClientError for a missing object: nothing yet
        if type(e).__name__ in ("ClientError", "NoSuchKey", "NoSuchUpload"):
            return 0, []
        raise


async def status(api: Any, mount: FileMount, request: Request) -> Response:
    record = await _record(api, mount, request)
    blobs = mount.files.blobs
    parts: list[dict[str, int]] = []
    received = 0
    if blobs.hosted:
        if record.part_size is None:
            received = await blobs.stat(record.staging) or 0
        else:
            count = max(1, -(-record.size // record.part_size))
            for n in range(1, count + 1):
                size = await blobs.stat(part_blob(record.staging, n))
                if size is not None:
                    parts.append({"part_number": n, "size": size})
                    received += size
    elif record.state == "pending":
        received, parts = await _s3_progress(blobs, record)
    return _json(
        {
            "upload_id": record.id,
            "key": record.key,
            "size": record.size,
            "content_type": record.content_type,
            "state": record.state,
            "expires_at": record.expires_at,
            "bytes_received": received,
            "parts": parts,
            "hosted": blobs.hosted,
        }
    )


class _Capped:
    """The request body, refused with 413 past ``limit`` bytes."""

    def __init__(self, request: Request, limit: int) -> None:
        self.request = request
        self.limit = limit

    async def __aiter__(self) -> AsyncIterator[bytes]:
        seen = 0
        async for piece in self.request.stream():
            seen += len(piece)
            if seen > self.limit:
                raise PayloadTooLarge(f"the upload is larger than the {self.limit} bytes granted")
            yield piece


def _claims(token: str) -> dict[str, Any]:
    """The claims of a token, unverified (the file store verifies it)."""
    try:
        body = token.split(".")[0]
        claims = msgspec.json.decode(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    except (binascii.Error, ValueError, msgspec.DecodeError):
        claims = None
    if not isinstance(claims, dict):
        raise ValidationError("invalid or forged token", field="token")
    return claims


def _declared(request: Request, limit: int) -> None:
    text = request.headers.get("content-length")
    if text is not None and (not text.isdigit() or int(text) > limit):
        raise PayloadTooLarge(f"the upload is larger than the {limit} bytes granted")


async def receive_form(api: Any, mount: FileMount, request: Request) -> Response:
    """A hosted form target: the grant's token is the credential (a browser posts here
    without a bearer token, as it would to S3)."""
    upload_id = request.path_params["upload_id"]
    _declared(request, mount.upload_limit + FORM_OVERHEAD)
    capped = _Capped(request, mount.upload_limit + FORM_OVERHEAD)
    form = FormReader(capped.__aiter__(), boundary_of(request.headers.get("content-type")))
    fields = await form.fields()
    claims = _claims(fields.get("token", ""))
    if claims.get("u") != upload_id:
        raise ValidationError("the token is for another upload", field="token")
    record = await mount.files.uploads.read(upload_id)
    if record is not None:
        capped.limit = record.size + FORM_OVERHEAD
    await mount.files.accept_upload(fields, form.file(), principal=claims.get("p"))
    return Response(status_code=204)


async def receive_part(api: Any, mount: FileMount, request: Request) -> Response:
    """A hosted part target (``PUT …/_uploads/{id}/{n}?token=…``); answers the part's ETag."""
    upload_id = request.path_params["upload_id"]
    token = request.query_params.get("token", "")
    claims = _claims(token)
    if claims.get("u") != upload_id or claims.get("n") != request.path_params["part"]:
        raise ValidationError("the token is for another part", field="token")
    record = await mount.files.uploads.read(upload_id)
    limit = (record.part_size or 0) if record is not None else 0
    _declared(request, limit)
    etag = await mount.files.accept_part(token, _Capped(request, limit), principal=claims.get("p"))
    return Response(status_code=200, headers={"ETag": f'"{etag}"'})


async def complete(api: Any, mount: FileMount, request: Request) -> Response:

    record = await _record(api, mount, request)
    parts = None
    if request.headers.get("content-length", "0") != "0" or request.headers.get(
        "transfer-encoding"
    ):
        data = await read_json(request, api.limits)
        if not isinstance(data, dict) or set(data) - {"parts"}:
            raise ValidationError(
                'the body is {"parts": [{"part_number", "etag"}, …]}', field="parts"
            )
        parts = data.get("parts")
        if parts is not None and not isinstance(parts, list):
            raise ValidationError("parts is a list", field="parts")
    info = await mount.files.complete_upload(record.id, parts)
    return _json(await render(api, request, mount, info), 201)


async def abort(api: Any, mount: FileMount, request: Request) -> Response:
    record = await _record(api, mount, request)
    await mount.files.abort_upload(record.id)
    return Response(status_code=204)


def upload_routes(api: Any, mount: FileMount, base: str) -> list[BaseRoute]:
    return [
        file_route(base + "/_uploads", api, mount, {"POST": begin}),
        file_route(
            base + "/_uploads/{upload_id}",
            api,
            mount,
            {"GET": status, "POST": receive_form, "DELETE": abort},
        ),
        file_route(base + "/_uploads/{upload_id}/_complete", api, mount, {"POST": complete}),
        file_route(base + "/_uploads/{upload_id}/{part:int}", api, mount, {"PUT": receive_part}),
    ]
