"""Upload grants of a file store (async; the sync twin ``_sync/uploads.py`` is
generated): a client uploads directly (to S3, or to the hosted routes that call
``accept_upload``/``accept_part``) and ``complete_upload`` checks everything before
anything becomes visible."""

from __future__ import annotations

import builtins
import contextlib
import math
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import timedelta
from typing import Any

from persisty.errors import (
    NotFound,
    PersistyError,
    ValidationError,
)
from persisty.files._async.base import AsyncFileStoreBase
from persisty.files._async.reader import Data, pieces
from persisty.files._content import (
    Digest,
    check_content_type,
    check_metadata,
    check_sha256,
    decide_type,
)
from persisty.files._model import (
    FileInfo,
    FileUpload,
    UploadGrant,
    UploadPart,
    check_key,
    check_prefix,
    invalid,
    new_blob_id,
    seconds,
)

MAX_PARTS = 10_000
MAX_FORM_SIZE = 5 * 1024**3


class AsyncFileUploads(AsyncFileStoreBase):
    """The upload half of a file store: grants, receiving hosted uploads, completing and
    aborting them."""

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
            # ... then, once it has: info = await files.complete_upload(grant.upload_id)
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
