"""The state of a file store and the catalog switch every write ends with (async; the sync
twin ``_sync/base.py`` is generated): a write becomes visible only when the catalog record
is switched to its complete blob by one conditional write."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import secrets as secrets_module
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from persisty.errors import (
    Conflict,
    NotFound,
    PersistyError,
    PreconditionFailed,
    ValidationError,
)
from persisty.files._async.blobs import AsyncBlobs
from persisty.files._model import (
    FileInfo,
    FileSecret,
    FileUpload,
    Limits,
    catalog_id,
    check_store_name,
    now_utc,
)
from persisty.files._signing import Signer
from persisty.model import etag
from persisty.query import F
from persisty.store import AsyncStore


class AsyncFileStoreBase:
    """What every part of a file store shares: its catalog, uploads and blobs, limits,
    clock and signer, and the conditional switch of a key to a blob (see
    :class:`AsyncFileStore`, which adds the public methods)."""

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
