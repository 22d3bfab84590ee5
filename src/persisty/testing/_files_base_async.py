"""The harness of the file store conformance suite (async; ``_files_base_sync.py`` is
generated): opening a file store per test, cleaning up, and driving grants and URLs the
way a browser would (httpx for backends with URLs of their own, such as S3; the hosted
backends through ``accept_upload``/``accept_part``, as their HTTP routes would)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from persisty.errors import PersistyError
from persisty.files import AsyncFileStore, Limits, UploadGrant, UploadPart


def code_of(e: pytest.ExceptionInfo[PersistyError]) -> str:
    return e.value.code


class AsyncFileStoreHarness:
    """What every part of the file store suite stands on: how to open a file store (each
    test's fresh one is the ``files`` fixture), clean it up, and drive its grants and URLs
    as a browser would. Subclasses implement :meth:`open_files`."""

    concurrent_writers = 20

    async def open_files(self, name: str, limits: Limits | None = None) -> AsyncFileStore:
        """A file store called ``name`` on the backend under test."""
        raise NotImplementedError

    async def drop(self, files: AsyncFileStore) -> None:
        """Remove what a test stored (before the file store is closed)."""
        async for info in files.list_all():
            await files.delete(info.key)
        await files.gc(older_than=0)

    async def send_form(self, files: AsyncFileStore, grant: UploadGrant, data: bytes) -> None:
        """Upload ``data`` the way a browser would with a form grant."""
        if grant.url.startswith("http"):
            import httpx

            answer = httpx.post(grant.url, data=grant.fields, files={"file": ("f", data)})
            assert answer.status_code in (200, 201, 204), answer.text
        else:
            await files.accept_upload(grant.fields, data)

    async def send_part(self, files: AsyncFileStore, part: UploadPart, data: bytes) -> str:
        """Upload one part of a multipart grant; the ETag to complete it with."""
        if part.url.startswith("http"):
            import httpx

            answer = httpx.put(part.url, content=data)
            assert answer.status_code == 200, answer.text
            return str(answer.headers["etag"])
        return await files.accept_part(part.url, data)

    async def fetch(self, files: AsyncFileStore, url: str) -> bytes:
        """The bytes a download URL serves."""
        if url.startswith("http"):
            import httpx

            answer = httpx.get(url)
            assert answer.status_code == 200, answer.text
            return answer.content
        signed = await files.verify_download(url.rpartition("token=")[2])
        return await files.read(signed.info.key)

    async def _open(self, limits: Limits | None = None) -> AsyncFileStore:
        return await self.open_files("f" + uuid.uuid4().hex[:12], limits)

    @pytest.fixture
    async def files(self) -> AsyncIterator[AsyncFileStore]:
        store = await self._open()
        try:
            yield store
        finally:
            try:
                await self.drop(store)
            finally:
                await store.close()
