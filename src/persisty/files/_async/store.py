"""The file store (async; the sync twin ``_sync/store.py`` is generated): a catalog of
``FileInfo`` records in an ordinary persisty store, plus immutable blobs.

A write streams into a fresh blob (hashing, counting and sniffing as it goes) and becomes
visible only when the catalog record is switched to that blob by one conditional write, so
readers never see partial content and overwrites are compare-and-swap.
"""

from __future__ import annotations

import builtins
import contextlib
import dataclasses
import math
import os
import secrets as secrets_module
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import IO, Any
from urllib.parse import quote

from persisty.errors import (
    Conflict,
    IntegrityError,
    NotFound,
    PersistyError,
    PreconditionFailed,
    ValidationError,
)
from persisty.files._async.blobs import AsyncBlobs
from persisty.files._model import (
    SNIFF_BYTES,
    Digest,
    FileInfo,
    FileSecret,
    FileUpload,
    FsckProblem,
    FsckReport,
    GcReport,
    Limits,
    UploadGrant,
    UploadPart,
    blob_time,
    catalog_id,
    check_content_type,
    check_key,
    check_metadata,
    check_prefix,
    check_sha256,
    check_store_name,
    decide_type,
    invalid,
    new_blob_id,
    now_utc,
    resolve_range,
    seconds,
)
from persisty.files._signing import Signer
from persisty.model import etag
from persisty.query import F, Filter, Order
from persisty.store import AsyncStore, Page

Data = bytes | bytearray | memoryview | IO[bytes] | AsyncIterable[bytes] | Iterable[bytes]
PIECE = 1024 * 1024
MAX_PARTS = 10_000
MAX_FORM_SIZE = 5 * 1024**3


async def pieces(data: Data, size: int = PIECE) -> AsyncIterator[bytes]:
    """The bytes of ``data`` (bytes, a binary file, or an iterable of bytes) in pieces."""
    if isinstance(data, bytes | bytearray | memoryview):
        view = memoryview(data)
        for at in range(0, len(view), size):
            yield bytes(view[at : at + size])
    elif hasattr(data, "read"):
        while True:
            piece = data.read(size)
            if not piece:
                break
            yield piece
    elif isinstance(data, AsyncIterable):
        async for piece in data:
            yield bytes(piece)
    else:
        for piece in data:
            yield bytes(piece)


class AsyncFileReader:
    """A file being read: ``info``, the range ``[start, end)``, iteration over pieces of
    bytes, ``read()`` for all of them at once.

    Example::

        reader = await files.open("a.bin", start=-10)
        reader.info.size, reader.end - reader.start
        async for piece in reader:
            ...
    """

    def __init__(self, info: FileInfo, start: int, end: int, blobs: AsyncBlobs) -> None:
        self.info = info
        self.start = start
        self.end = end
        self._blobs = blobs

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._blobs.read(self.info.blob, self.start, self.end)

    async def read(self) -> bytes:
        """Every byte of the range."""
        return await self._blobs.read_all(self.info.blob, self.start, self.end)


@dataclasses.dataclass(frozen=True, slots=True)
class SignedDownload:
    """What a genuine download URL grants: the file and the ``Content-Disposition``."""

    info: FileInfo
    disposition: str


def content_disposition(disposition: str, filename: str) -> str:
    """A ``Content-Disposition`` value with the file name in RFC 5987 form."""
    return f"{disposition}; filename*=UTF-8''{quote(filename, safe='')}"


class AsyncFileStore:
    """Files by key: a catalog (a Store of :class:`FileInfo`) plus blobs.

    Open one with ``db.files("avatars")`` (chunks in that database) or
    ``persisty.files.aio.connect(url, catalog=db)``. Every method validates the key
    (``invalid_key``) and raises persisty's errors.

    Example::

        files = persisty.aio.connect("memory://").files("docs")
        info = await files.put("a/b.txt", b"hello", content_type="text/plain")
        await files.read("a/b.txt", start=-2)     # b'lo'
    """

    def __init__(
        self,
        name: str,
        catalog: AsyncStore[FileInfo],
        uploads: AsyncStore[FileUpload],
        blobs: AsyncBlobs,
        *,
        limits: Limits | None = None,
        secret: bytes | str | None = None,
        secrets: AsyncStore[FileSecret] | None = None,
        base_url: str | None = None,
        clock: Callable[[], datetime] | None = None,
        closing: Sequence[Any] = (),
    ) -> None:
        self.name = check_store_name(name)
        self.catalog = catalog
        self.uploads = uploads
        self.blobs = blobs
        if limits is not None and not isinstance(limits, Limits):
            raise ValidationError("limits is a persisty.files.Limits", field="limits")
        self.limits = limits or Limits()
        self.base_url = (base_url or f"/files/{name}").rstrip("/")
        self.clock = clock or now_utc
        self._secret = (secret.encode() if isinstance(secret, str) else secret) or (
            os.environ.get("PERSISTY_SECRET", "").encode() or None
        )
        self._secrets = secrets
        self._signer: Signer | None = None
        self._closing = list(closing)

    # ---- helpers -----------------------------------------------------------------------

    def _id(self, key: str) -> str:
        return catalog_id(self.name, key)

    async def signer(self) -> Signer:
        """The signer of this store's grants and URLs (its secret is kept in the catalog's
        database when no ``secret`` was given, so every process shares it)."""
        if self._signer is None:
            secret = self._secret
            if secret is None and self._secrets is not None:
                kept = await self._secrets.read(self.name)
                if kept is None:
                    with contextlib.suppress(Conflict):
                        await self._secrets.create(
                            FileSecret(id=self.name, secret=secrets_module.token_hex(32))
                        )
                    kept = await self._secrets.read(self.name)
                if kept is not None:
                    secret = bytes.fromhex(kept.secret)
            if secret is None:
                secret = secrets_module.token_bytes(32)
            self._signer = Signer(b"persisty.files|" + self.name.encode() + b"|" + secret)
        return self._signer

    async def _release(self, blob: str) -> None:
        """Remove a blob that no record of the catalog points at any more."""
        if await self.catalog.count(F.blob == blob) == 0:
            with contextlib.suppress(PersistyError):
                await self.blobs.delete(blob)

    async def _switch(
        self,
        key: str,
        blob: str,
        size: int,
        content_type: str,
        sha: str,
        *,
        filename: str | None,
        metadata: dict[str, str],
        owner: str | None,
        if_match: str | None,
        if_none_match: str | None,
    ) -> FileInfo:
        """Point ``key`` at ``blob`` with one conditional catalog write."""
        cid = self._id(key)
        while True:
            current = await self.catalog.read(cid)
            now = self.clock()
            if current is None:
                if if_match is not None:
                    raise PreconditionFailed(f"no file {key!r} to match", field="if_match")
                info = FileInfo(
                    id=cid,
                    store=self.name,
                    key=key,
                    blob=blob,
                    size=size,
                    content_type=content_type,
                    etag=sha,
                    created_at=now,
                    updated_at=now,
                    owner=owner,
                    filename=filename,
                    metadata=metadata,
                )
                try:
                    return await self.catalog.create(info)
                except Conflict:
                    if if_none_match is not None:
                        raise PreconditionFailed(
                            f"file {key!r} exists", field="if_none_match"
                        ) from None
                    continue
            if if_none_match is not None:
                raise PreconditionFailed(f"file {key!r} exists", field="if_none_match")
            if if_match is not None and if_match not in ("*", current.etag):
                raise PreconditionFailed(f"file {key!r} has another etag", field="if_match")
            info = dataclasses.replace(
                current,
                blob=blob,
                size=size,
                content_type=content_type,
                etag=sha,
                updated_at=now,
                filename=filename,
                metadata=metadata,
                owner=owner if owner is not None else current.owner,
            )
            try:
                stored = await self.catalog.update(info, if_match=etag(current))
            except (PreconditionFailed, NotFound):
                if if_match is not None:
                    raise PreconditionFailed(
                        f"file {key!r} changed meanwhile", field="if_match"
                    ) from None
                continue
            if current.blob != blob:
                await self._release(current.blob)
            return stored

    async def _precheck(self, key: str, if_match: str | None, if_none_match: str | None) -> None:
        """Fail a conditional write before streaming any byte when it cannot succeed."""
        if if_none_match not in (None, "*"):
            raise ValidationError("if_none_match can only be '*'", field="if_none_match")
        if if_match is None and if_none_match is None:
            return
        current = await self.catalog.read(self._id(key))
        if if_none_match is not None and current is not None:
            raise PreconditionFailed(f"file {key!r} exists", field="if_none_match")
        if if_match is not None and (current is None or if_match not in ("*", current.etag)):
            raise PreconditionFailed(
                f"file {key!r} does not have etag {if_match!r}", field="if_match"
            )

    # ---- writing -------------------------------------------------------------------------

    async def put(
        self,
        key: str,
        data: Data,
        *,
        content_type: str | None = None,
        filename: str | None = None,
        metadata: Mapping[str, str] | None = None,
        if_match: str | None = None,
        if_none_match: str | None = None,
        expected_sha256: str | None = None,
        owner: str | None = None,
    ) -> FileInfo:
        """Store ``data`` (bytes, a binary file or an iterable of bytes) under ``key``.

        The bytes stream into a new blob; the file changes only when that is complete and
        checked (limits, sniffed type, ``expected_sha256``), by one conditional catalog
        write. ``if_match`` (an etag, or ``"*"``) and ``if_none_match="*"`` make it
        compare-and-swap (``PreconditionFailed``); the old version stays until then.

        Example::

            info = await files.put("a.txt", b"hello", content_type="text/plain")
            await files.put("a.txt", b"bye", if_match=info.etag)
        """
        key = check_key(key)
        meta = check_metadata(None if metadata is None else dict(metadata))
        expected = check_sha256(expected_sha256, "expected_sha256")
        if content_type is not None:
            check_content_type(content_type)
            self.limits.check_type(content_type)
        await self._precheck(key, if_match, if_none_match)
        digest = Digest(self.limits.max_size)
        checked = False

        async def metered() -> AsyncIterator[bytes]:
            nonlocal checked
            async for piece in pieces(data):
                if not piece:
                    continue
                digest.add(piece)
                if not checked and len(digest.head) >= SNIFF_BYTES:
                    decide_type(content_type, digest.head, key, filename, self.limits)
                    checked = True
                yield piece

        blob = self.blobs.new_id()
        await self.blobs.write(blob, metered())
        try:
            self.limits.check_size(digest.size)
            chosen = decide_type(content_type, digest.head, key, filename, self.limits)
            sha = digest.hexdigest()
            if expected is not None and expected != sha:
                raise invalid(
                    "digest_mismatch",
                    f"the bytes have SHA-256 {sha}, not {expected}",
                    field="expected_sha256",
                )
            return await self._switch(
                key,
                blob,
                digest.size,
                chosen,
                sha,
                filename=filename,
                metadata=meta,
                owner=owner,
                if_match=if_match,
                if_none_match=if_none_match,
            )
        except BaseException:
            with contextlib.suppress(PersistyError):
                await self.blobs.delete(blob)
            raise

    async def copy(self, src: str, dst: str, *, if_none_match: str | None = None) -> FileInfo:
        """Make ``dst`` a copy of ``src``; no byte moves (both records share the blob).

        Example::

            await files.copy("a.txt", "b.txt")
        """
        info = await self.info(src)
        dst = check_key(dst, "dst")
        await self._precheck(dst, None, if_none_match)
        copied = await self._switch(
            dst,
            info.blob,
            info.size,
            info.content_type,
            info.etag,
            filename=info.filename,
            metadata=dict(info.metadata),
            owner=info.owner,
            if_match=None,
            if_none_match=if_none_match,
        )
        if not await self.blobs.exists(info.blob):
            # the source was deleted (and its blob released) while we copied it
            with contextlib.suppress(NotFound, PreconditionFailed):
                await self.catalog.delete(copied.id, if_match=etag(copied))
            raise NotFound(f"no file {src!r}", field="src")
        return copied

    async def move(self, src: str, dst: str, *, if_none_match: str | None = None) -> FileInfo:
        """Rename ``src`` to ``dst`` (a copy, then the delete of ``src`` if unchanged)."""
        info = await self.info(src)
        moved = await self.copy(src, dst, if_none_match=if_none_match)
        with contextlib.suppress(NotFound, PreconditionFailed):
            await self.delete(src, if_match=info.etag)
        return moved

    async def delete(self, key: str, *, if_match: str | None = None) -> None:
        """Delete the file (``NotFound`` when there is none; ``if_match`` an etag)."""
        key = check_key(key)
        while True:
            current = await self.catalog.read(self._id(key))
            if current is None:
                raise NotFound(f"no file {key!r}", field="key")
            if if_match is not None and if_match not in ("*", current.etag):
                raise PreconditionFailed(f"file {key!r} has another etag", field="if_match")
            try:
                await self.catalog.delete(current.id, if_match=etag(current))
            except (PreconditionFailed, NotFound):
                if if_match is not None:
                    raise PreconditionFailed(
                        f"file {key!r} changed meanwhile", field="if_match"
                    ) from None
                continue
            await self._release(current.blob)
            return

    # ---- reading -----------------------------------------------------------------------

    async def info(self, key: str) -> FileInfo:
        """The catalog record of ``key`` (``NotFound`` when there is none)."""
        key = check_key(key)
        found = await self.catalog.read(self._id(key))
        if found is None:
            raise NotFound(f"no file {key!r}", field="key")
        return found

    async def info_batch(self, keys: Sequence[str]) -> list[FileInfo | None]:
        """The records of ``keys`` in order, ``None`` for a missing file (one read_batch)."""
        checked = [check_key(k) for k in keys]
        return await self.catalog.read_batch([self._id(k) for k in checked])

    async def exists(self, key: str) -> bool:
        """Whether there is a file ``key``."""
        return await self.catalog.read(self._id(check_key(key))) is not None

    async def open(self, key: str, *, start: int = 0, end: int | None = None) -> AsyncFileReader:
        """A streaming reader of the bytes ``[start, end)`` (a negative ``start`` counts
        from the end; ``invalid_range`` when the range is outside the file).

        Example::

            reader = await files.open("a.bin", start=-10)   # the last 10 bytes
            tail = await reader.read()
        """
        info = await self.info(key)
        s, e = resolve_range(info.size, start, end)
        return AsyncFileReader(info, s, e, self.blobs)

    async def read(self, key: str, *, start: int = 0, end: int | None = None) -> bytes:
        """The bytes ``[start, end)`` of a file (see :meth:`open`)."""
        reader = await self.open(key, start=start, end=end)
        return await reader.read()

    def _filter(self, prefix: str, filter: Filter | None) -> Filter:
        f: Filter = F.store == self.name
        prefix = check_prefix(prefix)
        if prefix:
            f = f & F.key.startswith(prefix)
        if filter is not None:
            f = f & filter
        return f

    async def list(
        self,
        prefix: str = "",
        *,
        filter: Filter | None = None,
        order: Iterable[Order | str] | Order | str | None = None,
        limit: int | None = 100,
        page_key: str | None = None,
    ) -> Page[FileInfo]:
        """One page of the files whose key starts with ``prefix`` and that match ``filter``
        (a persisty filter on :class:`FileInfo` attributes), by key unless ``order`` says.

        Example::

            page = await files.list("docs/", filter=F.size > 1000, order=[-F.updated_at])
            page.items, page.next_page_key
        """
        return await self.catalog.search(
            self._filter(prefix, filter), order if order is not None else [+F.key], limit, page_key
        )

    async def list_all(
        self, prefix: str = "", *, filter: Filter | None = None
    ) -> AsyncIterator[FileInfo]:
        """Every file under ``prefix`` matching ``filter``, by key."""
        async for info in self.catalog.search_all(self._filter(prefix, filter), [+F.key]):
            yield info

    async def count(self, filter: Filter | None = None, *, prefix: str = "") -> int:
        """How many files match ``filter`` (under ``prefix``)."""
        return await self.catalog.count(self._filter(prefix, filter))

    # ---- signed URLs -------------------------------------------------------------------

    async def download_url(
        self,
        key: str,
        *,
        expires_in: float | timedelta | None = None,
        disposition: str = "attachment",
        filename: str | None = None,
        principal: str | None = None,
    ) -> str:
        """A URL that downloads the file's current version until ``expires_in`` seconds.

        S3 answers a presigned URL; hosted backends a URL under ``base_url`` carrying a
        token bound to the store, key, etag, expiry and ``principal``, which
        :meth:`verify_download` checks.
        """
        if disposition not in ("attachment", "inline"):
            raise ValidationError("disposition is 'attachment' or 'inline'", field="disposition")
        info = await self.info(key)
        ttl = seconds(expires_in, self.limits.url_ttl)
        name = filename or info.filename or info.key.rsplit("/", 1)[-1]
        header = content_disposition(disposition, name)
        presigned = await self.blobs.presign_download(
            info.blob, int(ttl), info.content_type, header
        )
        if presigned is not None:
            return presigned
        signer = await self.signer()
        expires = int(self.clock().timestamp() + ttl)
        token = signer.sign(
            "download", {"k": info.key, "e": info.etag, "x": expires, "p": principal, "d": header}
        )
        return f"{self.base_url}/{quote(info.key)}?token={token}"

    async def verify_download(self, token: str, *, principal: str | None = None) -> SignedDownload:
        """What a download token grants, checked: genuine, not expired (``upload_expired``
        is not used here: ``url_expired``), for ``principal``, and the file unchanged
        (``PreconditionFailed``)."""
        signer = await self.signer()
        claims = signer.verify("download", token)
        if claims.get("x", 0) < self.clock().timestamp():
            raise invalid("url_expired", "the download URL has expired", field="token")
        if claims.get("p") is not None and claims.get("p") != principal:
            raise invalid(
                "invalid_token", "the download URL is for another principal", field="token"
            )
        info = await self.info(str(claims.get("k")))
        if info.etag != claims.get("e"):
            raise PreconditionFailed("the file changed since the URL was made", field="token")
        return SignedDownload(info, str(claims.get("d")))

    # ---- uploads -----------------------------------------------------------------------

    async def upload_grant(
        self,
        key: str | None = None,
        *,
        prefix: str | None = None,
        size: int,
        content_type: str,
        sha256: str | None = None,
        part_size: int | None = None,
        expires_in: float | timedelta | None = None,
        filename: str | None = None,
        metadata: Mapping[str, str] | None = None,
        owner: str | None = None,
    ) -> UploadGrant:
        """Let a client upload a file of ``size`` bytes of ``content_type`` directly.

        Without ``part_size``: a POST form (``url`` + ``fields``); with it: one PUT URL per
        part. ``key`` is the file's key, else ``prefix`` plus the upload id. Nothing is
        visible until :meth:`complete_upload` has checked size, type, sniffed bytes and
        ``sha256``.

        Example::

            grant = await files.upload_grant("a.png", size=n, content_type="image/png")
            # the browser POSTs grant.fields and the file to grant.url
            info = await files.complete_upload(grant.upload_id)
        """
        upload_id = new_blob_id()
        if key is None:
            key = check_prefix(prefix or "") + upload_id
        key = check_key(key)
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise ValidationError("size is a number of bytes", field="size")
        self.limits.check_size(size)
        check_content_type(content_type)
        self.limits.check_type(content_type)
        digest = check_sha256(sha256)
        meta = check_metadata(None if metadata is None else dict(metadata))
        if part_size is not None:
            if (
                not isinstance(part_size, int)
                or part_size < self.blobs.min_part_size
                or (part_size > MAX_FORM_SIZE)
            ):
                raise ValidationError(
                    f"part_size is from {self.blobs.min_part_size} bytes to 5 GiB",
                    field="part_size",
                )
            if max(1, math.ceil(size / part_size)) > MAX_PARTS:
                raise ValidationError(f"at most {MAX_PARTS} parts", field="part_size")
        elif size > MAX_FORM_SIZE:
            raise ValidationError("a file over 5 GiB needs a part_size", field="part_size")
        now = self.clock()
        expires_at = now + timedelta(seconds=seconds(expires_in, self.limits.grant_ttl))
        record = FileUpload(
            id=upload_id,
            store=self.name,
            key=key,
            size=size,
            content_type=content_type,
            staging=self.blobs.new_id(),
            expires_at=expires_at,
            created_at=now,
            sha256=digest,
            part_size=part_size,
            owner=owner,
            filename=filename,
            metadata=meta,
        )
        record = await self.blobs.start_upload(record)
        await self.uploads.create(record)
        presigned = await self.blobs.presign_upload(record, self.limits)
        if presigned is not None:
            return presigned
        signer = await self.signer()
        exp = int(expires_at.timestamp())
        base = f"{self.base_url}/_uploads/{upload_id}"
        if part_size is None:
            token = signer.sign("upload", {"u": upload_id, "x": exp, "p": owner})
            return UploadGrant(
                upload_id=upload_id,
                key=key,
                url=base,
                fields={"token": token},
                parts=[],
                expires_at=expires_at,
            )
        parts = []
        for n, at in enumerate(range(0, max(size, 1), part_size), 1):
            token = signer.sign("part", {"u": upload_id, "n": n, "x": exp, "p": owner})
            parts.append(
                UploadPart(
                    part_number=n, url=f"{base}/{n}?token={token}", size=min(part_size, size - at)
                )
            )
        return UploadGrant(
            upload_id=upload_id,
            key=key,
            url=base,
            fields={},
            parts=parts,
            expires_at=expires_at,
            method="PUT",
        )

    async def _pending(self, upload_id: str) -> FileUpload:
        record = await self.uploads.read(upload_id) if isinstance(upload_id, str) else None
        if record is None or record.store != self.name:
            raise NotFound(f"no upload {upload_id!r}", field="upload_id")
        if record.state == "pending" and record.expires_at < self.clock():
            raise invalid("upload_expired", "the upload grant has expired", field="upload_id")
        return record

    async def _claims(self, purpose: str, token: str, principal: str | None) -> dict[str, Any]:
        signer = await self.signer()
        claims = signer.verify(purpose, token)
        if claims.get("x", 0) < self.clock().timestamp():
            raise invalid("upload_expired", "the upload grant has expired", field="token")
        if claims.get("p") is not None and claims.get("p") != principal:
            raise invalid("invalid_token", "the grant is for another principal", field="token")
        return claims

    async def accept_upload(
        self, fields: Mapping[str, str], data: Data, *, principal: str | None = None
    ) -> None:
        """Receive the file of a form grant (what a hosted upload route calls): the
        ``token`` field is checked and at most the granted size is stored, as staging."""
        if self.blobs.hosted is False:
            raise ValidationError("this file store's uploads go to S3", field="url")
        claims = await self._claims("upload", fields.get("token", ""), principal)
        record = await self._pending(str(claims.get("u")))
        await self._receive(record.staging, data, record.size)

    async def accept_part(
        self, url_or_token: str, data: Data, *, principal: str | None = None
    ) -> str:
        """Receive one part of a multipart grant (its URL or token); return its ETag."""
        token = url_or_token.rpartition("token=")[2]
        claims = await self._claims("part", token, principal)
        record = await self._pending(str(claims.get("u")))
        number = int(claims.get("n", 0))
        assert record.part_size is not None
        return await self._receive(part_blob(record.staging, number), data, record.part_size)

    async def _receive(self, blob: str, data: Data, limit: int) -> str:
        await self.blobs.delete(blob)
        digest = Digest(limit)

        async def metered() -> AsyncIterator[bytes]:
            async for piece in pieces(data):
                digest.add(piece)
                yield piece

        await self.blobs.write(blob, metered())
        return digest.hexdigest()

    async def complete_upload(
        self, upload_id: str, parts: Sequence[Mapping[str, Any]] | None = None
    ) -> FileInfo:
        """Check an upload and make it the file: size (``file_too_large``,
        ``upload_incomplete``), type and sniffed bytes (``content_type_mismatch``), SHA-256
        (``digest_mismatch``). Nothing is visible before; a retry after success answers
        the same record.
        """
        record = await self._pending(upload_id)
        if record.state == "done":
            found = await self.catalog.read(self._id(record.key))
            if found is None:
                raise NotFound(f"no file {record.key!r}", field="key")
            return found
        if record.part_size is not None and parts is None:
            raise invalid("upload_incomplete", "a multipart upload needs its parts", field="parts")
        finished = await self.blobs.finish_upload(record, parts)
        if finished is None:
            finished = await self._assemble(record, parts)
        blob, size, sha, head = finished
        try:
            if size > record.size:
                raise invalid(
                    "file_too_large",
                    f"{size} bytes arrived, {record.size} were granted",
                    field="size",
                )
            if size < record.size:
                raise invalid(
                    "upload_incomplete", f"{size} of {record.size} bytes arrived", field="size"
                )
            self.limits.check_size(size)
            chosen = decide_type(
                record.content_type, head, record.key, record.filename, self.limits
            )
            if record.sha256 is not None and record.sha256 != sha:
                raise invalid(
                    "digest_mismatch",
                    f"the bytes have SHA-256 {sha}, not {record.sha256}",
                    field="sha256",
                )
            info = await self._switch(
                record.key,
                blob,
                size,
                chosen,
                sha,
                filename=record.filename,
                metadata=dict(record.metadata),
                owner=record.owner,
                if_match=None,
                if_none_match=None,
            )
        except BaseException:
            with contextlib.suppress(PersistyError):
                await self._release(blob)
            raise
        await self.uploads.patch(record.id, {"state": "done", "result_etag": sha})
        await self._drop_parts(record, keep=blob)
        return info

    async def _assemble(
        self, record: FileUpload, parts: Sequence[Mapping[str, Any]] | None
    ) -> tuple[str, int, str, bytes]:
        """A hosted upload's blob: the staging blob of a form, or the parts concatenated."""
        digest = Digest()
        if record.part_size is None:
            size = await self.blobs.stat(record.staging)
            if size is None:
                raise invalid("upload_incomplete", "nothing was uploaded", field="upload_id")
            async for piece in self.blobs.read(record.staging, 0, size):
                digest.add(piece)
            return record.staging, digest.size, digest.hexdigest(), digest.head
        given = check_parts(parts, record)
        blob = self.blobs.new_id()

        async def joined() -> AsyncIterator[bytes]:
            for number, tag in given:
                part, name = Digest(), part_blob(record.staging, number)
                size = await self.blobs.stat(name)
                if size is None:
                    raise invalid(
                        "upload_incomplete", f"part {number} was not uploaded", field="parts"
                    )
                async for piece in self.blobs.read(name, 0, size):
                    part.add(piece)
                    digest.add(piece)
                    yield piece
                if part.hexdigest() != tag:
                    raise invalid(
                        "upload_incomplete", f"part {number} has another etag", field="parts"
                    )

        await self.blobs.write(blob, joined())
        return blob, digest.size, digest.hexdigest(), digest.head

    async def _drop_parts(self, record: FileUpload, keep: str) -> None:
        for blob in self._upload_blobs(record):
            if blob != keep:
                with contextlib.suppress(PersistyError):
                    await self.blobs.delete(blob)

    def _upload_blobs(self, record: FileUpload) -> builtins.list[str]:
        blobs = [record.staging]
        if record.part_size is not None:
            n = max(1, math.ceil(record.size / record.part_size))
            blobs.extend(part_blob(record.staging, i) for i in range(1, n + 1))
        return blobs

    async def abort_upload(self, upload_id: str) -> None:
        """Drop a pending upload and whatever of it arrived."""
        record = await self.uploads.read(upload_id)
        if record is None or record.store != self.name:
            raise NotFound(f"no upload {upload_id!r}", field="upload_id")
        if record.state == "pending":
            await self.blobs.abort_upload(record)
            await self._drop_parts(record, keep="")
        with contextlib.suppress(NotFound):
            await self.uploads.delete(record.id)

    # ---- maintenance -------------------------------------------------------------------

    async def _referenced(self) -> set[str]:
        """The first 32 characters of every blob a file or a pending upload uses (a part
        blob shares them with its upload's staging blob)."""
        used = {i.blob[:32] async for i in self.catalog.search_all(F.store == self.name)}
        now = self.clock()
        async for u in self.uploads.search_all(F.store == self.name):
            if u.state == "pending" and u.expires_at >= now:
                used.add(u.staging[:32])
        return used

    async def gc(self, older_than: float | timedelta = 3600.0) -> GcReport:
        """Remove expired upload grants and the blobs nothing uses that are older than
        ``older_than`` (what crashed or failed writes left).

        Example::

            report = await files.gc(older_than=timedelta(hours=1))
            report.blobs, report.uploads
        """
        age = seconds(older_than, 3600.0)
        now = self.clock()
        report = GcReport()
        async for u in self.uploads.search_all(F.store == self.name):
            expired = u.state == "pending" and u.expires_at < now
            if expired or (u.state == "done" and u.created_at < now - timedelta(seconds=age)):
                if expired:
                    with contextlib.suppress(PersistyError):
                        await self.blobs.abort_upload(u)
                with contextlib.suppress(NotFound):
                    await self.uploads.delete(u.id)
                report.uploads.append(u.id)
        used = await self._referenced()
        cutoff = now - timedelta(seconds=age)
        for blob in await self.blobs.ids():
            if blob[:32] not in used and blob_time(blob) <= cutoff:
                await self.blobs.delete(blob)
                report.blobs.append(blob)
        return report

    async def fsck(self) -> FsckReport:
        """Check every file's blob (present, size, SHA-256) and list the orphaned blobs
        and the expired grants (``gc`` removes those).

        Example::

            report = await files.fsck()
            report.ok, report.problems, report.orphans
        """
        report = FsckReport()
        async for info in self.catalog.search_all(F.store == self.name):
            report.checked += 1
            digest = Digest()
            try:
                async for piece in self.blobs.read(info.blob, 0, info.size):
                    digest.add(piece)
            except IntegrityError as e:
                report.problems.append(FsckProblem(info.key, info.blob, "missing_blob", e.message))
                continue
            if digest.size != info.size:
                report.problems.append(
                    FsckProblem(
                        info.key, info.blob, "size_mismatch", f"{digest.size} != {info.size}"
                    )
                )
            elif digest.hexdigest() != info.etag:
                report.problems.append(
                    FsckProblem(info.key, info.blob, "digest_mismatch", digest.hexdigest())
                )
        used = await self._referenced()
        report.orphans = [b for b in await self.blobs.ids() if b[:32] not in used]
        now = self.clock()
        report.expired_uploads = [
            u.id
            async for u in self.uploads.search_all(F.store == self.name)
            if u.state == "pending" and u.expires_at < now
        ]
        return report

    async def close(self) -> None:
        """Close the blobs and the databases this file store opened itself."""
        await self.blobs.close()
        for db in self._closing:
            await db.close()

    async def __aenter__(self) -> AsyncFileStore:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def part_blob(staging: str, number: int) -> str:
    """The blob of part ``number`` of an upload whose staging blob is ``staging``."""
    return f"{staging[:32]}p{number:05d}{staging[32:]}"


def check_parts(
    parts: Sequence[Mapping[str, Any]] | None, record: FileUpload
) -> list[tuple[int, str]]:
    """``(part_number, etag)`` for every part of the upload, in order."""
    assert record.part_size is not None
    expected = max(1, math.ceil(record.size / record.part_size))
    given: dict[int, str] = {}
    for p in parts or ():
        number = p.get("part_number", p.get("PartNumber")) if isinstance(p, Mapping) else None
        tag = p.get("etag", p.get("ETag")) if isinstance(p, Mapping) else None
        if not isinstance(number, int) or not isinstance(tag, str):
            raise ValidationError("a part is {'part_number': int, 'etag': str}", field="parts")
        given[number] = tag.strip('"')
    missing = [n for n in range(1, expected + 1) if n not in given]
    if missing or len(given) != expected:
        raise invalid(
            "upload_incomplete",
            f"parts {missing or sorted(given)} do not match the {expected} granted",
            field="parts",
        )
    return sorted(given.items())
