"""File stores as the HTTP routes serve them: who the caller is, what its policy lets it do
with each file, how a file is shown (``FileInfo`` JSON with a signed URL), and the signed,
bearer-less download URLs (``?exp=…&v=…&sig=…``).

A file policy is an ordinary ``persisty.layers.Policy`` over :class:`FileInfo` (e.g.
``Policy.owner("owner")``), checked here on the catalog records: the file store itself
runs unrestricted, so shared blobs, copies and garbage collection stay correct whatever a
caller may see.
"""

from __future__ import annotations

import dataclasses
import hmac
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from persisty.errors import Forbidden, NotFound, PersistyError, Unauthorized, ValidationError
from persisty.files import AsyncFileStore, FileInfo
from persisty.layers import Policy
from persisty.model import meta_of
from persisty.query import ALL, NONE, Filter, attrs_of, matches
from persisty.serve._api import error_response
from persisty.serve._auth import ANONYMOUS_SUBJECT, make_principal

FILE_META = meta_of(FileInfo)
PUBLIC_ATTRS = (
    "key",
    "size",
    "content_type",
    "etag",
    "created_at",
    "updated_at",
    "owner",
    "filename",
    "metadata",
)
"""What a caller sees of a catalog record (never the blob id or the catalog key)."""
# Types a browser may render in the page's origin without running script; anything else
# (HTML, SVG, XML, JavaScript …) is always served as an attachment.
INLINE_SAFE = frozenset(
    {
        "image/png",
        "image/jpeg",
        "image/gif",
        "image/webp",
        "image/bmp",
        "image/avif",
        "image/tiff",
        "application/pdf",
        "text/plain",
        "text/csv",
        "audio/mpeg",
        "audio/ogg",
        "audio/wav",
        "audio/webm",
        "audio/aac",
        "audio/flac",
        "video/mp4",
        "video/webm",
        "video/ogg",
        "application/json",
    }
)
DISPOSITIONS = ("auto", "attachment", "inline")
"""``?disposition=``: ``auto`` (the default) shows an inline-safe type inline and anything
else as an attachment; ``attachment`` always downloads; ``inline`` is ``auto``."""
DEFAULT_MAX_UPLOAD = 1 << 30
LAMBDA_MAX_BODY = 6 * 1024 * 1024 * 3 // 4
"""Lambda takes a 6 MB request payload; API Gateway base64-encodes a binary body (4/3)."""


class SignatureInvalid(PersistyError):
    """403: a signed URL was tampered with or has expired."""

    code = "invalid_signature"
    status = 403


@dataclasses.dataclass(eq=False)
class FileMount:
    """One file store as the API serves it under ``{prefix}/_files/{name}``."""

    name: str
    files: AsyncFileStore
    policy: Any = None
    anonymous: bool = False
    redirect: bool = False
    max_upload: int = DEFAULT_MAX_UPLOAD

    @property
    def upload_limit(self) -> int:
        """The most bytes a PUT through the server may carry."""
        limit = self.files.limits.max_size
        return self.max_upload if limit is None else min(limit, self.max_upload)

    def put_limit(self, request: Request) -> tuple[int, str]:
        """The most bytes this request may upload through the server, and the message of
        the 413 beyond it (on Lambda, what API Gateway and Lambda pass to the function)."""
        if "aws.event" in request.scope and self.upload_limit > LAMBDA_MAX_BODY:
            return LAMBDA_MAX_BODY, (
                f"the file is larger than the {LAMBDA_MAX_BODY} bytes API Gateway and Lambda "
                "pass to a function: upload it with an upload grant (POST …/_uploads), "
                "which sends the bytes straight to the file store"
            )
        return self.upload_limit, (
            f"the file is larger than {self.upload_limit} bytes: "
            "upload it with an upload grant (POST …/_uploads)"
        )


@dataclasses.dataclass(frozen=True)
class Access:
    """What one caller may do with the files of one mount."""

    principal: Any
    read: Filter = ALL
    create: Filter = ALL
    update: Filter = ALL
    delete: Filter = ALL
    forced: dict[str, Any] = dataclasses.field(default_factory=dict)
    anonymous: bool = False

    def can(self, action: str, info: FileInfo) -> bool:
        rule: Filter = getattr(self, action)
        return rule is ALL or matches(rule, info, FILE_META)

    def allows_any(self, action: str) -> bool:
        """Whether some file could pass ``action`` (``False`` for a rule that is NONE)."""
        return getattr(self, action) is not NONE

    @property
    def owner(self) -> str | None:
        """The owner the policy sets on the files this caller writes."""
        value = self.forced.get("owner")
        return value if isinstance(value, str) else None

    def visible(self, key: str, info: FileInfo | None) -> FileInfo:
        """``info`` when the caller may read it; ``NotFound`` as if there were none."""
        if info is None or not self.can("read", info):
            raise NotFound(f"no file {key!r}", field="key")
        return info

    def forbid(self, action: str) -> PersistyError:
        if self.anonymous:
            return Unauthorized("credentials are required")
        return Forbidden(f"the access policy does not allow {action} here")


def access(api: Any, request: Request, mount: FileMount) -> Access:
    """The caller of ``request`` and its rules for ``mount`` (401 without credentials when
    the API needs them and the mount is not anonymous)."""

    anonymous = "authorization" not in request.headers
    if not anonymous:
        principal = api.principal(request, None)
    elif api.auth is not None and not mount.anonymous:
        raise Unauthorized("credentials are required")
    else:
        principal = make_principal(ANONYMOUS_SUBJECT, {ANONYMOUS_SUBJECT})
    policy = mount.policy
    if policy is None and api.auth is not None and anonymous:
        policy = Policy.read_only()  # as for items: anonymous callers only read
    if policy is None:
        return Access(principal, anonymous=anonymous)
    rules = policy.rules(principal).validated(FILE_META)
    return Access(
        principal,
        rules.read,
        rules.create,
        rules.update,
        rules.delete,
        dict(rules.forced),
        anonymous,
    )


def check_filter(f: Filter | None) -> None:
    """Listings filter on what a caller sees of a record, nothing else."""
    if f is None:
        return
    for name in attrs_of(f):
        if name not in PUBLIC_ATTRS:
            raise ValidationError(f"files cannot be filtered on {name!r}", field=name)


def candidate(
    mount: FileMount, key: str, current: FileInfo | None, owner: str | None, **changes: Any
) -> FileInfo:
    """The record a write would leave, for checking it against the policy beforehand."""
    now = mount.files.clock()
    if current is None:
        base = FileInfo(
            id="",
            store=mount.files.name,
            key=key,
            blob="",
            size=0,
            content_type="application/octet-stream",
            etag="",
            created_at=now,
            updated_at=now,
            owner=owner,
        )
    else:
        base = dataclasses.replace(current, owner=owner if owner is not None else current.owner)
    return dataclasses.replace(base, **changes)


def check_write(
    acc: Access, mount: FileMount, key: str, current: FileInfo | None, **changes: Any
) -> None:
    """Refuse (403/404) a write of ``key`` the caller's policy does not allow."""
    after = candidate(mount, key, current, acc.owner, **changes)
    if current is None:
        if not acc.can("create", after):
            raise acc.forbid("creating this file")
        return
    acc.visible(key, current)
    if not (acc.can("update", current) and acc.can("update", after)):
        raise acc.forbid("replacing this file")


# ---- signed URLs -------------------------------------------------------------------------


def mount_path(api: Any, request: Request | None, mount: FileMount) -> str:
    """``{root_path}{prefix}/_files/{name}`` (the routes may be mounted under a path)."""
    root = request.scope.get("root_path", "") if request is not None else ""
    return f"{root}{api.prefix}/_files/{mount.name}"


def _message(mount: FileMount, key: str, etag: str, exp: int, disposition: str) -> str:
    return f"{mount.name}\n{key}\n{etag}\n{exp}\n{disposition}"


async def signed_url(
    api: Any,
    request: Request | None,
    mount: FileMount,
    info: FileInfo,
    *,
    expires_in: float | None = None,
    disposition: str = "auto",
) -> tuple[str, datetime]:
    """A URL that downloads this version of the file without credentials until it
    expires, and when it expires (HMAC over store, key, etag, expiry and disposition)."""
    ttl = mount.files.limits.url_ttl if expires_in is None else expires_in
    if not 1 <= ttl <= 7 * 86400:
        raise ValidationError("expires_in is from 1 second to 7 days", field="expires_in")
    exp = int(mount.files.clock().timestamp() + ttl)
    signer = await mount.files.signer()
    sig = signer.mac("http-download", _message(mount, info.key, info.etag, exp, disposition))
    query = (
        f"exp={exp}&v={info.etag}"
        + ("" if disposition == "auto" else f"&disposition={disposition}")
        + f"&sig={sig}"
    )
    url = f"{mount_path(api, request, mount)}/{quote(info.key)}?{query}"
    return url, datetime.fromtimestamp(exp, mount.files.clock().tzinfo)


async def check_signature(mount: FileMount, key: str, params: Any) -> tuple[str, str]:
    """The etag and disposition a signed request is for; 403 when it is tampered with or
    expired (checked before the catalog is read, so it tells nothing about the file)."""
    exp_text, etag, sig = params.get("exp", ""), params.get("v", ""), params.get("sig", "")
    disposition = params.get("disposition", "auto")
    if disposition not in DISPOSITIONS or not exp_text.isdigit() or len(exp_text) > 12:
        raise SignatureInvalid("the signed URL is not valid", field="sig")
    signer = await mount.files.signer()
    expected = signer.mac("http-download", _message(mount, key, etag, int(exp_text), disposition))
    if not hmac.compare_digest(expected.encode(), sig.encode("utf-8", "replace")):
        raise SignatureInvalid("the signed URL is not valid", field="sig")
    if int(exp_text) < mount.files.clock().timestamp():
        raise SignatureInvalid("the signed URL has expired", field="exp")
    return etag, disposition


# ---- rendering ---------------------------------------------------------------------------


async def render(
    api: Any,
    request: Request | None,
    mount: FileMount,
    info: FileInfo,
    *,
    expires_in: float | None = None,
) -> dict[str, Any]:
    """A file as a caller sees it: the public attributes, ``url`` and ``url_expires_at``."""
    out: dict[str, Any] = {name: getattr(info, name) for name in PUBLIC_ATTRS}
    url, expires = await signed_url(api, request, mount, info, expires_in=expires_in)
    out["url"] = url
    out["url_expires_at"] = expires
    return out


async def render_all(
    api: Any, request: Request | None, mount: FileMount, infos: Sequence[FileInfo]
) -> list[dict[str, Any]]:
    return [await render(api, request, mount, i) for i in infos]


def file_mounts(
    files: Any, file_policies: Any, anonymous: Any, *, redirect: Any = False
) -> dict[str, FileMount]:
    """The :class:`FileMount` of every file store given to ``app(files=…)``.

    ``files`` maps a name to an ``AsyncFileStore``; ``file_policies`` a name to a
    ``Policy`` over ``FileInfo``; ``anonymous`` (``True`` or names) lets callers without
    credentials in (read-only unless a policy says more); ``redirect`` (``True`` or names)
    makes S3 stores answer downloads with a 302 to a presigned URL.
    """
    if files is None:
        if file_policies:
            raise ValidationError("file_policies needs files=", field="file_policies")
        return {}
    if not isinstance(files, dict):
        raise ValidationError("files maps a name to a file store", field="files")
    policies = dict(file_policies or {})
    for name in policies:
        if name not in files:
            raise ValidationError(
                f"file_policies names {name!r}, which is not in files", field="file_policies"
            )
    mounts: dict[str, FileMount] = {}
    for name, store in files.items():
        if not isinstance(store, AsyncFileStore):
            raise TypeError(
                f"files[{name!r}] must be an async file store "
                "(persisty.aio.connect(url).files(name)), not "
                f"{type(store).__name__}"
            )
        if not isinstance(name, str) or not name.replace("_", "").isalnum():
            raise ValidationError(f"invalid file store name {name!r}", field="files")
        anon = anonymous is True or (not isinstance(anonymous, bool) and name in anonymous)
        redir = redirect is True or (not isinstance(redirect, bool) and name in redirect)
        mounts[name] = FileMount(name, store, policies.get(name), anon, redir)
    return mounts


FileHandler = Callable[[Any, FileMount, Request], Awaitable[Response]]


def file_route(path: str, api: Any, mount: FileMount, handlers: dict[str, FileHandler]) -> Route:
    """One route of a file mount, errors answered as the API's JSON errors."""

    async def endpoint(request: Request) -> Response:
        method = "GET" if request.method == "HEAD" else request.method
        try:
            return await handlers[method](api, mount, request)
        except PersistyError as e:
            return error_response(
                e,
                anonymous="authorization" not in request.headers,
                headers=getattr(e, "headers", None),
            )

    methods = list(handlers) + (["HEAD"] if "GET" in handlers else [])
    return Route(path, endpoint, methods=methods)
