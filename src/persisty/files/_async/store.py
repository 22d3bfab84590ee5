"""The file store (async; the sync twin ``_sync/store.py`` is generated): a catalog of
``FileInfo`` records in an ordinary persisty store, plus immutable blobs.

A write streams into a fresh blob (hashing, counting and sniffing as it goes) and becomes
visible only when the catalog record is switched to that blob by one conditional write, so
readers never see partial content and overwrites are compare-and-swap.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from datetime import timedelta
from urllib.parse import quote

from persisty.errors import (
    NotFound,
    PersistyError,
    PreconditionFailed,
    ValidationError,
)
from persisty.files._async.maintenance import AsyncFileMaintenance
from persisty.files._async.reader import (
    AsyncFileReader,
    Data,
    SignedDownload,
    content_disposition,
    pieces,
)
from persisty.files._async.uploads import AsyncFileUploads
from persisty.files._content import (
    Digest,
    check_content_type,
    check_metadata,
    check_sha256,
    decide_type,
)
from persisty.files._model import (
    SNIFF_BYTES,
    FileInfo,
    check_key,
    check_prefix,
    invalid,
    resolve_range,
    seconds,
)
from persisty.model import etag
from persisty.query import F, Filter, Order
from persisty.store import Page


class AsyncFileStore(AsyncFileUploads, AsyncFileMaintenance):
    """Files by key: a catalog (a Store of :class:`FileInfo`) plus blobs.

    Open one with ``db.files("avatars")`` (chunks in that database) or
    ``persisty.files.aio.connect(url, catalog=db)``. Every method validates the key
    (``invalid_key``) and raises persisty's errors.

    Example::

        files = db.files("docs")
        info = await files.put("a/b.txt", b"hello", content_type="text/plain")
        assert await files.read("a/b.txt", start=-2) == b"lo" and info.size == 5
    """

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

    async def close(self) -> None:
        """Close the blobs and the databases this file store opened itself."""
        await self.blobs.close()
        for db in self._closing:
            await db.close()

    async def __aenter__(self) -> AsyncFileStore:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
