"""The two thin DynamoDB clients the backend runs on: ``AsyncClient`` (aiobotocore) and
``Client`` (botocore), with the same methods, so that the sync store is generated from the
async one (``AsyncClient`` -> ``Client``).

Each call retries throttling and transient server errors with exponential backoff and full
jitter, and turns connection failures into ``Unavailable``; ``gather`` runs several calls
at once (asyncio tasks, or threads for the sync client).
"""

from __future__ import annotations

import asyncio
import random
import secrets
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlsplit

import botocore.exceptions
import botocore.session
from botocore.config import Config

from persisty.errors import PersistyError, Unavailable, ValidationError

T = TypeVar("T")

RETRYABLE = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "InternalServerError",
        "ServiceUnavailable",
        "TransactionInProgressException",
        "LimitExceededException",
    }
)
MAX_ATTEMPTS = 10
BASE_DELAY = 0.025
MAX_DELAY = 2.0
CONCURRENCY = 16
META_KEY = "k"


def backoff(attempt: int) -> float:
    """Full-jitter exponential backoff: a random delay up to ``BASE * 2**attempt``."""
    return random.uniform(0, min(MAX_DELAY, BASE_DELAY * (2**attempt)))


def error_code(e: BaseException) -> str:
    """The AWS error code of a botocore ``ClientError`` ('' for anything else)."""
    if isinstance(e, botocore.exceptions.ClientError):
        return str(e.response.get("Error", {}).get("Code", ""))
    return ""


def parse_url(url: str) -> dict[str, str]:
    """The query options of ``dynamodb://?region=…&endpoint_url=…&prefix=…``."""
    parts = urlsplit(url)
    if parts.scheme.split("+")[0] != "dynamodb":
        raise ValidationError(f"not a dynamodb URL: {url!r}", field="url")
    options = dict(parse_qsl(parts.query, keep_blank_values=False))
    known = {"region", "endpoint_url", "prefix", "max_sort", "segments", "profile"}
    unknown = sorted(set(options) - known)
    if unknown:
        raise ValidationError(
            f"unknown dynamodb URL option {unknown[0]!r} (known: {', '.join(sorted(known))})",
            field="url",
        )
    return options


def client_arguments(options: dict[str, str]) -> dict[str, Any]:
    """Keyword arguments for ``create_client('dynamodb', …)``."""
    kwargs: dict[str, Any] = {
        "config": Config(
            retries={"max_attempts": 2, "mode": "standard"},
            max_pool_connections=64,
            parameter_validation=False,
            connect_timeout=5,
            read_timeout=30,
        ),
    }
    if options.get("region"):
        kwargs["region_name"] = options["region"]
    if options.get("endpoint_url"):
        kwargs["endpoint_url"] = options["endpoint_url"]
    return kwargs


_SESSIONS: dict[tuple[str, str], Any] = {}
_SESSIONS_LOCK = threading.Lock()


def _session(options: dict[str, str], kind: str) -> Any:
    """A botocore (``sync``) or aiobotocore (``async``) session per profile, kept for the
    process: creating clients from one session reuses its loaded service models."""
    profile = options.get("profile", "")
    with _SESSIONS_LOCK:
        session = _SESSIONS.get((kind, profile))
        if session is None:
            if kind == "async":
                from aiobotocore.session import get_session  # type: ignore[import-untyped]

                session = get_session()
            else:
                session = botocore.session.get_session()
            if profile:
                session.set_config_variable("profile", profile)
            if session.get_config_variable("region") is None:
                session.set_config_variable("region", "us-east-1")
            _SESSIONS[(kind, profile)] = session
        return session


def _translate(e: Exception) -> PersistyError | None:
    if isinstance(
        e, botocore.exceptions.EndpointConnectionError | (botocore.exceptions.ConnectionClosedError)
    ):
        return Unavailable(f"DynamoDB is unavailable: {e}")
    if isinstance(e, botocore.exceptions.NoCredentialsError):
        return Unavailable("no AWS credentials for DynamoDB (set AWS_ACCESS_KEY_ID …)")
    if isinstance(e, botocore.exceptions.BotoCoreError) and not isinstance(
        e, botocore.exceptions.ClientError
    ):
        return Unavailable(f"DynamoDB request failed: {e}")
    return None


class AsyncClient:
    """aiobotocore's DynamoDB client, created on first use.

    Example::

        client = AsyncClient({"region": "us-east-1"})
        out = await client.call("describe_table", TableName="t")
    """

    def __init__(self, options: dict[str, str]) -> None:
        self.options = options
        self._raw: Any = None
        self._context: Any = None
        self._lock = asyncio.Lock()
        self._tasks = asyncio.Semaphore(CONCURRENCY)

    async def raw(self) -> Any:
        """The aiobotocore client (for event hooks)."""
        if self._raw is None:
            async with self._lock:
                if self._raw is None:
                    session = _session(self.options, "async")
                    with _SESSIONS_LOCK:
                        self._context = session.create_client(
                            "dynamodb", **client_arguments(self.options)
                        )
                    self._raw = await self._context.__aenter__()
        return self._raw

    async def call(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        """One API call with retries for throttling and transient errors."""
        client = self._raw or await self.raw()
        method = getattr(client, operation)
        for attempt in range(MAX_ATTEMPTS):
            try:
                result: dict[str, Any] = await method(**kwargs)
                return result
            except Exception as e:
                if error_code(e) in RETRYABLE and attempt < MAX_ATTEMPTS - 1:
                    await asyncio.sleep(backoff(attempt))
                    continue
                failure = _translate(e)
                if failure is not None:
                    raise failure from e
                raise
        raise Unavailable(f"DynamoDB kept throttling {operation}")

    async def sleep(self, seconds: float) -> None:
        """Wait (between retries of unprocessed items)."""
        await asyncio.sleep(seconds)

    async def gather(self, calls: Sequence[Callable[[], Awaitable[T]]]) -> list[T]:
        """Run ``calls`` concurrently (at most ``CONCURRENCY`` at once); results in order."""
        if len(calls) == 1:
            return [await calls[0]()]

        async def one(fn: Callable[[], Awaitable[T]]) -> T:
            async with self._tasks:
                return await fn()

        return list(await asyncio.gather(*(one(fn) for fn in calls)))

    async def close(self) -> None:
        """Close the HTTP connections."""
        if self._context is not None:
            await self._context.__aexit__(None, None, None)
            self._context = self._raw = None


class Client:
    """botocore's DynamoDB client, created on first use (thread-safe).

    Example::

        client = Client({"region": "us-east-1"})
        out = client.call("describe_table", TableName="t")
    """

    def __init__(self, options: dict[str, str]) -> None:
        self.options = options
        self._raw: Any = None
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None

    def raw(self) -> Any:
        """The botocore client (for event hooks)."""
        if self._raw is None:
            with self._lock:
                if self._raw is None:
                    session = _session(self.options, "sync")
                    with _SESSIONS_LOCK:
                        self._raw = session.create_client(
                            "dynamodb", **client_arguments(self.options)
                        )
        return self._raw

    def call(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        """One API call with retries for throttling and transient errors."""
        client = self._raw or self.raw()
        method = getattr(client, operation)
        for attempt in range(MAX_ATTEMPTS):
            try:
                result: dict[str, Any] = method(**kwargs)
                return result
            except Exception as e:
                if error_code(e) in RETRYABLE and attempt < MAX_ATTEMPTS - 1:
                    time.sleep(backoff(attempt))
                    continue
                failure = _translate(e)
                if failure is not None:
                    raise failure from e
                raise
        raise Unavailable(f"DynamoDB kept throttling {operation}")

    def sleep(self, seconds: float) -> None:
        """Wait (between retries of unprocessed items)."""
        time.sleep(seconds)

    def gather(self, calls: Sequence[Callable[[], T]]) -> list[T]:
        """Run ``calls`` in threads (at most ``CONCURRENCY`` at once); results in order."""
        if len(calls) == 1:
            return [calls[0]()]
        if self._pool is None:
            with self._lock:
                if self._pool is None:
                    self._pool = ThreadPoolExecutor(CONCURRENCY, "persisty-dynamodb")
        futures = [self._pool.submit(fn) for fn in calls]
        return [f.result() for f in futures]

    def close(self) -> None:
        """Close the HTTP connections."""
        if self._pool is not None:
            self._pool.shutdown(wait=False)
            self._pool = None
        if self._raw is not None:
            self._raw.close()
            self._raw = None


def client_error(e: Exception, what: str) -> PersistyError:
    """The persisty error for a DynamoDB error response."""
    code = error_code(e)
    message = str(e)
    if isinstance(e, botocore.exceptions.ClientError):
        message = str(e.response.get("Error", {}).get("Message", "")) or message
    if code == "ValidationException":
        if "size" in message.lower():
            return ValidationError(f"{what}: the item is over DynamoDB's 400 KB limit ({message})")
        return ValidationError(f"{what}: DynamoDB refused the request: {message}")
    if code == "ResourceNotFoundException":
        return Unavailable(f"{what}: the DynamoDB table is missing ({message})")
    return Unavailable(f"{what}: DynamoDB error {code}: {message}")


def meta_definition(name: str) -> dict[str, Any]:
    """CreateTable arguments of the meta table (one string key)."""
    return {
        "TableName": name,
        "AttributeDefinitions": [{"AttributeName": META_KEY, "AttributeType": "S"}],
        "KeySchema": [{"AttributeName": META_KEY, "KeyType": "HASH"}],
        "BillingMode": "PAY_PER_REQUEST",
    }


def load_secret(options: dict[str, str], meta_table: str) -> bytes:
    """The page-key secret kept in the meta table (created once), read synchronously."""
    client = Client(options)
    try:
        try:
            client.call("describe_table", TableName=meta_table)
        except botocore.exceptions.ClientError as e:
            if error_code(e) != "ResourceNotFoundException":
                raise client_error(e, meta_table) from e
            try:
                client.call("create_table", **meta_definition(meta_table))
            except botocore.exceptions.ClientError as e2:
                if error_code(e2) != "ResourceInUseException":
                    raise client_error(e2, meta_table) from e2
            for attempt in range(600):
                out = client.call("describe_table", TableName=meta_table)["Table"]
                if out.get("TableStatus") == "ACTIVE":
                    break
                client.sleep(min(1.0, 0.05 * (attempt + 1)))
        try:
            client.call(
                "put_item",
                TableName=meta_table,
                Item={META_KEY: {"S": "secret"}, "v": {"S": secrets.token_hex(32)}},
                ConditionExpression="attribute_not_exists(#k)",
                ExpressionAttributeNames={"#k": META_KEY},
            )
        except botocore.exceptions.ClientError as e:
            if error_code(e) != "ConditionalCheckFailedException":
                raise client_error(e, meta_table) from e
        out = client.call(
            "get_item", TableName=meta_table, Key={META_KEY: {"S": "secret"}}, ConsistentRead=True
        )
        return str(out["Item"]["v"]["S"]).encode()
    finally:
        client.close()


__all__ = [
    "META_KEY",
    "AsyncClient",
    "Client",
    "backoff",
    "client_error",
    "error_code",
    "load_secret",
    "meta_definition",
    "parse_url",
]
