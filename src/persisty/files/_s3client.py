"""The two thin S3 clients the S3 blobs run on: ``AsyncS3Client`` (aiobotocore) and
``S3Client`` (botocore), with the same methods, so that the sync blobs are generated from the
async ones (``AsyncS3Client`` -> ``S3Client``).

Connection failures become ``Unavailable``; a missing object answers ``None`` where the
caller asks whether it is there.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import botocore.exceptions
import botocore.session
from botocore.config import Config

from persisty.errors import PersistyError, Unavailable, ValidationError

PIECE = 1024 * 1024


def parse_s3_url(url: str) -> tuple[str, str, dict[str, str]]:
    """``(bucket, prefix, options)`` of ``s3://bucket/prefix?region=…&endpoint_url=…``."""
    parts = urlsplit(url)
    if parts.scheme != "s3" or not parts.netloc:
        raise ValidationError(f"not an S3 URL (s3://bucket/prefix): {url!r}", field="url")
    options = dict(parse_qsl(parts.query))
    known = {"region", "endpoint_url", "profile"}
    unknown = sorted(set(options) - known)
    if unknown:
        raise ValidationError(
            f"unknown s3 URL option {unknown[0]!r} (known: {', '.join(sorted(known))})", field="url"
        )
    return parts.netloc, unquote(parts.path).strip("/"), options


def error_code(e: BaseException) -> str:
    """The S3 error code of a botocore ``ClientError`` ('' for anything else)."""
    if isinstance(e, botocore.exceptions.ClientError):
        return str(e.response.get("Error", {}).get("Code", ""))
    return ""


def translate(e: Exception) -> PersistyError | None:
    """The persisty error for a failure of the connection (``None`` for an S3 answer)."""
    if isinstance(e, botocore.exceptions.NoCredentialsError):
        return Unavailable("no AWS credentials for S3 (set AWS_ACCESS_KEY_ID …)")
    if isinstance(e, botocore.exceptions.BotoCoreError):
        return Unavailable(f"S3 is unavailable: {e}")
    return None


def _arguments(options: dict[str, str]) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "config": Config(
            retries={"max_attempts": 4, "mode": "standard"},
            max_pool_connections=32,
            signature_version="s3v4",
            s3={"addressing_style": "path"},
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        ),
        "region_name": options.get("region") or "us-east-1",
    }
    if options.get("endpoint_url"):
        kwargs["endpoint_url"] = options["endpoint_url"]
    return kwargs


_SESSIONS: dict[tuple[str, str], Any] = {}
_WORKERS = ThreadPoolExecutor(max_workers=8, thread_name_prefix="persisty-s3")
_LOCK = threading.Lock()


def _session(kind: str, profile: str) -> Any:
    with _LOCK:
        found = _SESSIONS.get((kind, profile))
        if found is None:
            if kind == "async":
                from aiobotocore.session import get_session  # type: ignore[import-untyped]

                found = get_session()
            else:
                found = botocore.session.get_session()
            if profile:
                found.set_config_variable("profile", profile)
            _SESSIONS[(kind, profile)] = found
        return found


class AsyncS3Client:
    """aiobotocore's S3 client, created on first use."""

    def __init__(self, options: dict[str, str]) -> None:
        self._options = options
        self._context: Any = None
        self._client: Any = None

    async def client(self) -> Any:
        """The underlying aiobotocore client."""
        if self._client is None:
            session = _session("async", self._options.get("profile", ""))
            self._context = session.create_client("s3", **_arguments(self._options))
            self._client = await self._context.__aenter__()
        return self._client

    async def call(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        """Run one S3 operation."""
        client = await self.client()
        try:
            result: dict[str, Any] = await getattr(client, operation)(**kwargs)
        except Exception as e:
            mapped = translate(e)
            if mapped is not None:
                raise mapped from e
            raise
        return result

    async def stream(self, bucket: str, key: str, start: int, end: int) -> AsyncIterator[bytes]:
        """The bytes ``[start, end)`` of an object (``Range`` passthrough)."""
        answer = await self.call(
            "get_object", Bucket=bucket, Key=key, Range=f"bytes={start}-{end - 1}"
        )
        body = answer["Body"]
        try:
            while True:
                piece = await body.read(PIECE)
                if not piece:
                    break
                yield piece
        finally:
            body.close()

    def spawn(self, work: Callable[..., Awaitable[Any]], *args: Any) -> asyncio.Future[Any]:
        """Start ``work(*args)`` in the background (a task); :meth:`wait` for its result."""
        return asyncio.ensure_future(work(*args))

    async def wait(self, handle: asyncio.Future[Any]) -> Any:
        """The result of what :meth:`spawn` started."""
        return await handle

    async def presign(self, operation: str, params: dict[str, Any], expires: int) -> str:
        """A presigned URL for ``operation``."""
        client = await self.client()
        url: str = await client.generate_presigned_url(operation, Params=params, ExpiresIn=expires)
        return url

    async def presign_post(
        self, bucket: str, key: str, fields: dict[str, str], conditions: list[Any], expires: int
    ) -> dict[str, Any]:
        """A presigned POST form (``url``, ``fields``)."""
        client = await self.client()
        form: dict[str, Any] = await client.generate_presigned_post(
            bucket, key, Fields=fields, Conditions=conditions, ExpiresIn=expires
        )
        return form

    async def close(self) -> None:
        """Close the client's connections."""
        if self._context is not None:
            await self._context.__aexit__(None, None, None)
            self._context = self._client = None


class S3Client:
    """botocore's S3 client, created on first use."""

    def __init__(self, options: dict[str, str]) -> None:
        self._options = options
        self._client: Any = None

    def client(self) -> Any:
        """The underlying botocore client."""
        if self._client is None:
            session = _session("sync", self._options.get("profile", ""))
            self._client = session.create_client("s3", **_arguments(self._options))
        return self._client

    def call(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        """Run one S3 operation."""
        client = self.client()
        try:
            result: dict[str, Any] = getattr(client, operation)(**kwargs)
        except Exception as e:
            mapped = translate(e)
            if mapped is not None:
                raise mapped from e
            raise
        return result

    def stream(self, bucket: str, key: str, start: int, end: int) -> Iterator[bytes]:
        """The bytes ``[start, end)`` of an object (``Range`` passthrough)."""
        answer = self.call("get_object", Bucket=bucket, Key=key, Range=f"bytes={start}-{end - 1}")
        body = answer["Body"]
        try:
            while True:
                piece = body.read(PIECE)
                if not piece:
                    break
                yield piece
        finally:
            body.close()

    def spawn(self, work: Callable[..., Any], *args: Any) -> Future[Any]:
        """Start ``work(*args)`` in the background (a thread); :meth:`wait` for its result."""
        return _WORKERS.submit(work, *args)

    def wait(self, handle: Future[Any]) -> Any:
        """The result of what :meth:`spawn` started."""
        return handle.result()

    def presign(self, operation: str, params: dict[str, Any], expires: int) -> str:
        """A presigned URL for ``operation``."""
        url: str = self.client().generate_presigned_url(operation, Params=params, ExpiresIn=expires)
        return url

    def presign_post(
        self, bucket: str, key: str, fields: dict[str, str], conditions: list[Any], expires: int
    ) -> dict[str, Any]:
        """A presigned POST form (``url``, ``fields``)."""
        form: dict[str, Any] = self.client().generate_presigned_post(
            bucket, key, Fields=fields, Conditions=conditions, ExpiresIn=expires
        )
        return form

    def close(self) -> None:
        """Close the client's connections."""
        if self._client is not None:
            self._client.close()
            self._client = None
