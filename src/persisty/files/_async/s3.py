"""Blobs as S3 objects (async; the sync twin ``_sync/s3.py`` is generated).

Layout under ``s3://bucket/prefix``: ``<prefix>/<store>/blobs/<id>`` (immutable, written
with ``IfNoneMatch="*"``) and ``<prefix>/<store>/uploads/<upload id>`` (where a browser's
upload lands before it is checked). A write is one PUT up to 8 MiB and a multipart upload
beyond, every part with its SHA-256. A browser upload is finalized by a HEAD (size, type),
a 4 KiB ranged GET (sniffing) and a server-side copy with ``ChecksumAlgorithm=SHA256``
from its staging key, whose SHA-256 is read back from the copy: no byte is downloaded.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from persisty.errors import Conflict, IntegrityError, PersistyError
from persisty.files._async.blobs import AsyncBlobs
from persisty.files._content import base_type
from persisty.files._model import FileUpload, Limits, UploadGrant, UploadPart, invalid
from persisty.files._s3client import AsyncS3Client, error_code, parse_s3_url

SINGLE_PUT = 8 * 1024 * 1024
PART_SIZE = 8 * 1024 * 1024
IN_FLIGHT = 2
MISSING = frozenset({"404", "NoSuchKey", "NotFound"})


def _b64sha(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


class AsyncS3Blobs(AsyncBlobs):
    """Blobs in an S3 bucket (``files.connect("s3://bucket/prefix?region=…", catalog=db)``).

    S3 signs its own URLs: ``download_url`` is a presigned GET, ``upload_grant`` a presigned
    POST form (its policy pins the staging key, the content type and the exact size) or
    presigned ``UploadPart`` URLs.
    """

    hosted = False
    min_part_size = 5 * 1024 * 1024

    def __init__(self, url: str, store: str) -> None:
        self.bucket, prefix, options = parse_s3_url(url)
        self.base = f"{prefix}/{store}/" if prefix else f"{store}/"
        self.client = AsyncS3Client(options)
        # blob id -> multipart uploads a killed write left open, as the last ids() saw them
        self._open_uploads: dict[str, list[str]] = {}

    def key(self, blob_id: str) -> str:
        """The object key of a blob."""
        return f"{self.base}blobs/{blob_id}"

    def staging(self, record: FileUpload) -> str:
        """The object key an upload lands at."""
        return f"{self.base}uploads/{record.id}"

    async def write(self, blob_id: str, data: AsyncIterator[bytes]) -> None:
        key = self.key(blob_id)
        buffer = bytearray()
        upload_id: str | None = None
        parts: list[dict[str, Any]] = []
        # one part uploads while the next is read: at most IN_FLIGHT parts in memory
        flying: list[Any] = []
        try:
            async for piece in data:
                buffer += piece
                while (
                    (len(buffer) > SINGLE_PUT) if upload_id is None else (len(buffer) >= PART_SIZE)
                ):
                    if upload_id is None:
                        started = await self.client.call(
                            "create_multipart_upload",
                            Bucket=self.bucket,
                            Key=key,
                            ChecksumAlgorithm="SHA256",
                        )
                        upload_id = str(started["UploadId"])
                    body = bytes(buffer[:PART_SIZE])
                    del buffer[:PART_SIZE]
                    if len(flying) >= IN_FLIGHT:
                        parts.append(await self.client.wait(flying.pop(0)))
                    flying.append(
                        self.client.spawn(
                            self._part, key, upload_id, len(parts) + len(flying) + 1, body
                        )
                    )
            if upload_id is None:
                body = bytes(buffer)
                await self.client.call(
                    "put_object",
                    Bucket=self.bucket,
                    Key=key,
                    Body=body,
                    ChecksumSHA256=_b64sha(body),
                    IfNoneMatch="*",
                )
                return
            while flying:
                parts.append(await self.client.wait(flying.pop(0)))
            if buffer or not parts:
                parts.append(await self._part(key, upload_id, len(parts) + 1, bytes(buffer)))
            await self.client.call(
                "complete_multipart_upload",
                Bucket=self.bucket,
                Key=key,
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},
                IfNoneMatch="*",
            )
        except BaseException as e:
            for handle in flying:
                with contextlib.suppress(BaseException):
                    await self.client.wait(handle)
            if upload_id is not None:
                with contextlib.suppress(Exception):
                    await self.client.call(
                        "abort_multipart_upload", Bucket=self.bucket, Key=key, UploadId=upload_id
                    )
            if error_code(e) == "PreconditionFailed":
                raise Conflict(f"blob {blob_id} exists") from e
            raise

    async def _part(self, key: str, upload_id: str, number: int, body: bytes) -> dict[str, Any]:
        checksum = _b64sha(body)
        answer = await self.client.call(
            "upload_part",
            Bucket=self.bucket,
            Key=key,
            UploadId=upload_id,
            PartNumber=number,
            Body=body,
            ChecksumSHA256=checksum,
        )
        return {"PartNumber": number, "ETag": answer["ETag"], "ChecksumSHA256": checksum}

    async def read(self, blob_id: str, start: int, end: int) -> AsyncIterator[bytes]:
        if start >= end:
            if await self.stat(blob_id) is None:
                raise IntegrityError(f"blob {blob_id} is missing")
            return
        try:
            async for piece in self.client.stream(self.bucket, self.key(blob_id), start, end):
                yield piece
        except PersistyError:
            raise
        except Exception as e:
            if error_code(e) in MISSING:
                raise IntegrityError(f"blob {blob_id} is missing") from e
            raise

    async def _head(self, key: str) -> dict[str, Any] | None:
        try:
            return await self.client.call("head_object", Bucket=self.bucket, Key=key)
        except Exception as e:
            if error_code(e) in MISSING:
                return None
            raise

    async def stat(self, blob_id: str) -> int | None:
        head = await self._head(self.key(blob_id))
        return None if head is None else int(head["ContentLength"])

    async def delete(self, blob_id: str) -> None:
        key = self.key(blob_id)
        for upload_id in self._open_uploads.pop(blob_id, ()):
            await self.client.call(
                "abort_multipart_upload", Bucket=self.bucket, Key=key, UploadId=upload_id
            )
        await self.client.call("delete_object", Bucket=self.bucket, Key=key)

    async def ids(self) -> list[str]:
        """The blobs' ids, and those of the multipart uploads a killed write left open
        (invisible, but billed: ``gc`` aborts them as it deletes orphaned blobs)."""
        found: list[str] = []
        token: str | None = None
        prefix = f"{self.base}blobs/"
        while True:
            extra = {"ContinuationToken": token} if token else {}
            page = await self.client.call(
                "list_objects_v2", Bucket=self.bucket, Prefix=prefix, **extra
            )
            found.extend(o["Key"][len(prefix) :] for o in page.get("Contents", ()))
            if not page.get("IsTruncated"):
                break
            token = page["NextContinuationToken"]
        self._open_uploads = await self._multipart_uploads(prefix)
        return found + [b for b in self._open_uploads if b not in found]

    async def _multipart_uploads(self, prefix: str) -> dict[str, list[str]]:
        """Blob id -> the ids of the multipart uploads open under ``prefix``."""
        found: dict[str, list[str]] = {}
        marker: dict[str, str] = {}
        while True:
            page = await self.client.call(
                "list_multipart_uploads", Bucket=self.bucket, Prefix=prefix, **marker
            )
            for upload in page.get("Uploads", ()):
                blob = upload["Key"][len(prefix) :]
                found.setdefault(blob, []).append(str(upload["UploadId"]))
            if not page.get("IsTruncated"):
                return found
            marker = {
                "KeyMarker": page["NextKeyMarker"],
                "UploadIdMarker": page["NextUploadIdMarker"],
            }

    async def close(self) -> None:
        await self.client.close()

    async def presign_download(
        self, blob_id: str, ttl: int, content_type: str, disposition: str
    ) -> str | None:
        return await self.client.presign(
            "get_object",
            {
                "Bucket": self.bucket,
                "Key": self.key(blob_id),
                "ResponseContentType": content_type,
                "ResponseContentDisposition": disposition,
            },
            ttl,
        )

    async def start_upload(self, record: FileUpload) -> FileUpload:
        if record.part_size is None:
            return record
        started = await self.client.call(
            "create_multipart_upload",
            Bucket=self.bucket,
            Key=self.staging(record),
            ContentType=record.content_type,
        )
        record.multipart_id = str(started["UploadId"])
        return record

    async def presign_upload(self, record: FileUpload, limits: Limits) -> UploadGrant | None:
        ttl = max(1, int((record.expires_at - record.created_at).total_seconds()))
        key = self.staging(record)
        if record.part_size is None:
            form = await self.client.presign_post(
                self.bucket,
                key,
                {"Content-Type": record.content_type},
                [
                    {"Content-Type": record.content_type},
                    ["content-length-range", record.size, record.size],
                ],
                ttl,
            )
            return UploadGrant(
                upload_id=record.id,
                key=record.key,
                url=str(form["url"]),
                fields=dict(form["fields"]),
                parts=[],
                expires_at=record.expires_at,
            )
        parts = []
        for number, at in enumerate(range(0, max(record.size, 1), record.part_size), 1):
            url = await self.client.presign(
                "upload_part",
                {
                    "Bucket": self.bucket,
                    "Key": key,
                    "UploadId": record.multipart_id,
                    "PartNumber": number,
                },
                ttl,
            )
            parts.append(
                UploadPart(
                    part_number=number, url=url, size=min(record.part_size, record.size - at)
                )
            )
        return UploadGrant(
            upload_id=record.id,
            key=record.key,
            url="",
            fields={},
            parts=parts,
            expires_at=record.expires_at,
            method="PUT",
        )

    async def finish_upload(
        self, record: FileUpload, parts: Sequence[Mapping[str, Any]] | None
    ) -> tuple[str, int, str, bytes] | None:
        from persisty.files._async.uploads import check_parts

        key = self.staging(record)
        if record.part_size is not None and await self._head(key) is None:
            given = check_parts(parts, record)
            try:
                await self.client.call(
                    "complete_multipart_upload",
                    Bucket=self.bucket,
                    Key=key,
                    UploadId=record.multipart_id,
                    MultipartUpload={
                        "Parts": [{"PartNumber": n, "ETag": f'"{tag}"'} for n, tag in given]
                    },
                )
            except PersistyError:
                raise
            except Exception as e:
                raise invalid(
                    "upload_incomplete", f"S3 refused the parts: {e}", field="parts"
                ) from e
        head = await self._head(key)
        if head is None:
            raise invalid("upload_incomplete", "nothing was uploaded", field="upload_id")
        size = int(head["ContentLength"])
        if size != record.size:
            await self._drop(key)
            code = "file_too_large" if size > record.size else "upload_incomplete"
            raise invalid(code, f"{size} bytes arrived, {record.size} were granted", field="size")
        if base_type(str(head.get("ContentType", ""))) != base_type(record.content_type):
            await self._drop(key)
            raise invalid(
                "content_type_mismatch",
                f"the upload is {head.get('ContentType')}, not {record.content_type}",
                field="content_type",
            )
        first = b""
        if size:
            first = b"".join(
                [p async for p in self.client.stream(self.bucket, key, 0, min(size, 4096))]
            )
        blob_id = self.new_id()
        copied = await self.client.call(
            "copy_object",
            Bucket=self.bucket,
            Key=self.key(blob_id),
            CopySource={"Bucket": self.bucket, "Key": key},
            ChecksumAlgorithm="SHA256",
            ContentType=record.content_type,
            MetadataDirective="REPLACE",
        )
        checksum = copied.get("CopyObjectResult", {}).get("ChecksumSHA256")
        if not checksum:
            again = await self.client.call(
                "head_object", Bucket=self.bucket, Key=self.key(blob_id), ChecksumMode="ENABLED"
            )
            checksum = again.get("ChecksumSHA256")
        if not checksum or "-" in str(checksum):
            await self.delete(blob_id)
            raise IntegrityError("S3 gave no full-object SHA-256 for the copy")
        await self._drop(key)
        return blob_id, size, base64.b64decode(str(checksum)).hex(), first

    async def _drop(self, key: str) -> None:
        with contextlib.suppress(Exception):
            await self.client.call("delete_object", Bucket=self.bucket, Key=key)

    async def abort_upload(self, record: FileUpload) -> None:
        if record.multipart_id:
            with contextlib.suppress(Exception):
                await self.client.call(
                    "abort_multipart_upload",
                    Bucket=self.bucket,
                    Key=self.staging(record),
                    UploadId=record.multipart_id,
                )
        await self._drop(self.staging(record))
