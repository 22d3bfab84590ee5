"""Files in GraphQL: a ``File`` type (``key size contentType etag url(expiresIn: Int =
300)``), ``FileRef`` attributes resolved to it (one ``info_batch`` per file store and level
of a query), a ``<store>Files`` query per file store, and the ``beginUpload`` /
``completeUpload`` / ``deleteFile`` mutations, all under the same policies as the REST
routes."""

from __future__ import annotations

import dataclasses
from typing import Any

from graphql import (
    GraphQLArgument,
    GraphQLBoolean,
    GraphQLEnumType,
    GraphQLField,
    GraphQLInputField,
    GraphQLInputObjectType,
    GraphQLInt,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLString,
)

from persisty.errors import NotFound, PersistyError, PreconditionFailed, ValidationError
from persisty.files import FileInfo, check_key
from persisty.query import ALL
from persisty.serve._files_access import FileMount, access, signed_url
from persisty.serve._files_uploads import begin_upload, grant_json
from persisty.serve._graphql_loading import Info, Loader


@dataclasses.dataclass(frozen=True)
class FileView:
    """What a ``File`` field resolves from: the mount, the key and etag asked for, and the
    catalog record when the caller may read that version (else ``None``)."""

    mount: FileMount
    key: str
    etag: str
    info: FileInfo | None


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.capitalize() for p in rest)


async def _url(view: FileView, info: Info, expiresIn: int = 300) -> str | None:
    if view.info is None:
        return None
    if not 1 <= expiresIn <= 7 * 86400:
        raise ValidationError("expiresIn is from 1 second to 7 days", field="expiresIn")
    ctx = info.context
    url, _ = await signed_url(ctx.api, ctx.request, view.mount, view.info, expires_in=expiresIn)
    return url


FILE = GraphQLObjectType(
    "File",
    lambda: {
        "key": GraphQLField(GraphQLNonNull(GraphQLString), resolve=lambda v, _: v.key),
        "etag": GraphQLField(GraphQLNonNull(GraphQLString), resolve=lambda v, _: v.etag),
        "size": GraphQLField(GraphQLInt, resolve=lambda v, _: v.info.size if v.info else None),
        "contentType": GraphQLField(
            GraphQLString, resolve=lambda v, _: v.info.content_type if v.info else None
        ),
        "url": GraphQLField(
            GraphQLString,
            args={"expiresIn": GraphQLArgument(GraphQLInt, default_value=300)},
            resolve=_url,
            description="a signed download URL (null when the file changed or is not readable)",
        ),
    },
    description="A file of a file store (a FileRef attribute shows the version it names)",
)
FILE_PAGE = GraphQLObjectType(
    "FilePage",
    {
        "items": GraphQLField(GraphQLNonNull(GraphQLList(GraphQLNonNull(FILE)))),
        "next_page_key": GraphQLField(GraphQLString),
    },
)
GRANT_PART = GraphQLObjectType(
    "UploadGrantPart",
    {
        "part_number": GraphQLField(GraphQLNonNull(GraphQLInt)),
        "url": GraphQLField(GraphQLNonNull(GraphQLString)),
        "size": GraphQLField(GraphQLNonNull(GraphQLInt)),
    },
)
GRANT = GraphQLObjectType(
    "UploadGrant",
    {
        "upload_id": GraphQLField(GraphQLNonNull(GraphQLString)),
        "key": GraphQLField(GraphQLNonNull(GraphQLString)),
        "method": GraphQLField(GraphQLNonNull(GraphQLString)),
        "url": GraphQLField(GraphQLNonNull(GraphQLString)),
        "fields": GraphQLField(
            GraphQLNonNull(GraphQLList(GraphQLNonNull(GraphQLList(GraphQLNonNull(GraphQLString))))),
            description="[name, value] pairs of the form",
        ),
        "parts": GraphQLField(GraphQLNonNull(GraphQLList(GraphQLNonNull(GRANT_PART)))),
        "expires_at": GraphQLField(GraphQLNonNull(GraphQLString)),
    },
)
PART_INPUT = GraphQLInputObjectType(
    "UploadPartInput",
    {
        "part_number": GraphQLInputField(GraphQLNonNull(GraphQLInt)),
        "etag": GraphQLInputField(GraphQLNonNull(GraphQLString)),
    },
)


def _loader(info: Info, mount: FileMount) -> Any:
    """One ``info_batch`` per file store and tick of the event loop, for a request."""
    ctx = info.context
    name = "files:" + mount.name
    found = ctx.loaders.get(name)
    if found is None:
        found = ctx.loaders[name] = Loader(mount.files.info_batch)
    return found


def ref_field(mount: FileMount, attr: str, description: str | None) -> GraphQLField:
    """The field of a ``FileRef`` attribute: the ``File`` of the version it names."""

    async def resolve(item: Any, info: Info) -> FileView | None:
        ref = getattr(item, attr, None)
        if ref is None:
            return None
        try:
            found = await _loader(info, mount).get(ref.key)
        except ValidationError:
            found = None
        try:
            acc = access(info.context.api, info.context.request, mount)
        except PersistyError:  # no right to these files at all: the reference, no details
            acc = None
        if found is not None and (
            acc is None or not acc.can("read", found) or found.etag != ref.etag
        ):
            found = None
        return FileView(mount, ref.key, ref.etag, found)

    return GraphQLField(FILE, resolve=resolve, description=description)


def _grant_out(grant: Any, mount: FileMount, ctx: Any) -> dict[str, Any]:
    out = grant_json(grant, mount, ctx.api, ctx.request)
    out["fields"] = [[k, v] for k, v in out["fields"].items()]
    out["expires_at"] = out["expires_at"].isoformat()
    return out


def add_file_fields(
    api: Any,
    mounts: dict[str, FileMount],
    query: dict[str, GraphQLField],
    mutation: dict[str, GraphQLField],
) -> None:
    """The file queries of every mount and the upload / delete mutations."""
    if not mounts:
        return
    for name, mount in mounts.items():
        query[_camel(name) + "Files"] = GraphQLField(
            GraphQLNonNull(FILE_PAGE),
            args={
                "prefix": GraphQLArgument(GraphQLString, default_value=""),
                "order": GraphQLArgument(GraphQLString),
                "limit": GraphQLArgument(GraphQLInt),
                "page_key": GraphQLArgument(GraphQLString),
            },
            resolve=_lister(api, mount),
            description=f"The files of {name}",
        )
    store_enum = GraphQLEnumType("FileStore", {n: n for n in mounts})

    def mount_of(store: str) -> FileMount:
        return mounts[store]

    async def begin(
        _: Any,
        info: Info,
        store: str,
        size: int,
        contentType: str,
        key: str | None = None,
        prefix: str | None = None,
        filename: str | None = None,
        sha256: str | None = None,
        partSize: int | None = None,
    ) -> dict[str, Any]:
        mount = mount_of(store)
        acc = access(info.context.api, info.context.request, mount)
        if not (acc.allows_any("create") or acc.allows_any("update")):
            raise acc.forbid("uploading files")
        grant = await begin_upload(
            api,
            mount,
            acc,
            key=key,
            prefix=prefix,
            size=size,
            content_type=contentType,
            filename=filename,
            sha256=sha256,
            part_size=partSize,
            on_lambda="aws.event" in info.context.request.scope,
        )
        return _grant_out(grant, mount, info.context)

    async def complete(
        _: Any, info: Info, store: str, uploadId: str, parts: list[dict[str, Any]] | None = None
    ) -> FileView:
        mount = mount_of(store)
        acc = access(info.context.api, info.context.request, mount)
        record = await mount.files.uploads.read(uploadId)
        if (
            record is None
            or record.store != mount.files.name
            or (acc.owner is not None and record.owner != acc.owner)
            or not (acc.allows_any("create") or acc.allows_any("update"))
        ):
            raise NotFound(f"no upload {uploadId!r}", field="uploadId")
        done = await mount.files.complete_upload(uploadId, parts)
        return FileView(mount, done.key, done.etag, done)

    async def delete(_: Any, info: Info, store: str, key: str, ifMatch: str | None = None) -> bool:
        mount = mount_of(store)
        acc = access(info.context.api, info.context.request, mount)
        key = check_key(key)
        found = acc.visible(key, (await mount.files.info_batch([key]))[0])
        if not acc.can("delete", found):
            raise acc.forbid("deleting this file")
        if ifMatch is not None and ifMatch.strip('"') not in ("*", found.etag):
            raise PreconditionFailed(f"file {key!r} does not have that etag", field="ifMatch")
        await mount.files.delete(key, if_match=found.etag)
        return True

    store_arg = {"store": GraphQLArgument(GraphQLNonNull(store_enum))}
    mutation["beginUpload"] = GraphQLField(
        GraphQLNonNull(GRANT),
        args={
            **store_arg,
            "size": GraphQLArgument(GraphQLNonNull(GraphQLInt)),
            "contentType": GraphQLArgument(GraphQLNonNull(GraphQLString)),
            "key": GraphQLArgument(GraphQLString),
            "prefix": GraphQLArgument(GraphQLString),
            "filename": GraphQLArgument(GraphQLString),
            "sha256": GraphQLArgument(GraphQLString),
            "partSize": GraphQLArgument(GraphQLInt),
        },
        resolve=begin,
        description="An upload grant (the caller's create/update right is checked first)",
    )
    mutation["completeUpload"] = GraphQLField(
        GraphQLNonNull(FILE),
        args={
            **store_arg,
            "uploadId": GraphQLArgument(GraphQLNonNull(GraphQLString)),
            "parts": GraphQLArgument(GraphQLList(GraphQLNonNull(PART_INPUT))),
        },
        resolve=complete,
        description="Check an upload and make it the file",
    )
    mutation["deleteFile"] = GraphQLField(
        GraphQLNonNull(GraphQLBoolean),
        args={
            **store_arg,
            "key": GraphQLArgument(GraphQLNonNull(GraphQLString)),
            "ifMatch": GraphQLArgument(GraphQLString),
        },
        resolve=delete,
    )


def _lister(api: Any, mount: FileMount) -> Any:
    async def resolve(
        _: Any,
        info: Info,
        prefix: str = "",
        order: str | None = None,
        limit: int | None = None,
        page_key: str | None = None,
    ) -> dict[str, Any]:
        acc = access(info.context.api, info.context.request, mount)
        if limit is not None and not 1 <= limit <= api.max_limit:
            raise ValidationError(f"limit must be between 1 and {api.max_limit}", field="limit")
        if order is not None:
            for name in order.split(","):
                if name.strip().lstrip("+-") not in (
                    "key",
                    "size",
                    "content_type",
                    "created_at",
                    "updated_at",
                ):
                    raise ValidationError(f"files cannot be ordered by {name!r}", field="order")
        page = await mount.files.list(
            prefix,
            filter=None if acc.read is ALL else acc.read,
            order=order,
            limit=limit or 100,
            page_key=page_key,
        )
        return {
            "items": [FileView(mount, i.key, i.etag, i) for i in page.items],
            "next_page_key": page.next_page_key,
        }

    return resolve
