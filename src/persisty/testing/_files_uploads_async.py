"""The file store conformance suite's grants (async; ``_files_uploads_sync.py`` is
generated): signed download URLs, form uploads and multipart uploads, with the checks
``complete_upload`` makes before anything becomes visible."""

from __future__ import annotations

import hashlib

import pytest

from persisty.errors import NotFound, PreconditionFailed, ValidationError
from persisty.files import AsyncFileStore
from persisty.testing._files_base_async import AsyncFileStoreHarness, code_of
from persisty.testing._files_data import payload


class AsyncFileUploadConformance(AsyncFileStoreHarness):
    """Download URLs and upload grants."""

    # ---- signed URLs and uploads ----------------------------------------------------------

    async def test_download_url(self, files: AsyncFileStore) -> None:
        data = payload(5000, 4)
        await files.put("d/x.bin", data)
        url = await files.download_url("d/x.bin", expires_in=60)
        assert await self.fetch(files, url) == data
        with pytest.raises(ValidationError):
            await files.download_url("d/x.bin", disposition="evil")
        if files.blobs.hosted:
            token = url.rpartition("token=")[2]
            with pytest.raises(ValidationError):
                await files.verify_download(token[:-2] + "xx")
            await files.put("d/x.bin", b"changed")
            with pytest.raises(PreconditionFailed):
                await files.verify_download(token)
            mine = await files.download_url("d/x.bin", principal="ann")
            mine_token = mine.rpartition("token=")[2]
            assert (await files.verify_download(mine_token, principal="ann")).info.size == 7
            with pytest.raises(ValidationError):
                await files.verify_download(mine_token, principal="bob")
            expired = await files.download_url("d/x.bin", expires_in=0)
            with pytest.raises(ValidationError) as e:
                await files.verify_download(expired.rpartition("token=")[2])
            assert code_of(e) == "url_expired"

    async def test_form_upload(self, files: AsyncFileStore) -> None:
        data = payload(50_000, 5)
        sha = hashlib.sha256(data).hexdigest()
        grant = await files.upload_grant(
            "up/a.bin",
            size=len(data),
            content_type="application/octet-stream",
            sha256=sha,
            metadata={"by": "ann"},
            filename="a.bin",
        )
        assert grant.key == "up/a.bin" and not grant.parts
        assert not await files.exists("up/a.bin")
        with pytest.raises(ValidationError) as e:
            await files.complete_upload(grant.upload_id)
        assert code_of(e) == "upload_incomplete"
        await self.send_form(files, grant, data)
        assert not await files.exists("up/a.bin")  # nothing visible before completion
        info = await files.complete_upload(grant.upload_id)
        assert (info.etag, info.size, info.metadata, info.filename) == (
            sha,
            len(data),
            {"by": "ann"},
            "a.bin",
        )
        assert await files.complete_upload(grant.upload_id) == info  # idempotent
        assert await files.read("up/a.bin") == data
        prefixed = await files.upload_grant(prefix="inbox/", size=3, content_type="text/plain")
        assert prefixed.key.startswith("inbox/")

    async def test_upload_checks(self, files: AsyncFileStore) -> None:
        data = payload(2000, 6)
        for sent, kind, sha, code in [
            (data, "application/octet-stream", "0" * 64, "digest_mismatch"),
            (data, "image/png", None, "content_type_mismatch"),
        ]:
            grant = await files.upload_grant("chk", size=len(sent), content_type=kind, sha256=sha)
            await self.send_form(files, grant, sent)
            with pytest.raises(ValidationError) as e:
                await files.complete_upload(grant.upload_id)
            assert code_of(e) == code
            assert not await files.exists("chk")
        grant = await files.upload_grant("chk", size=10, content_type="text/plain", expires_in=0)
        with pytest.raises(ValidationError) as e:
            await files.complete_upload(grant.upload_id)
        assert code_of(e) == "upload_expired"
        assert grant.upload_id in (await files.fsck()).expired_uploads
        assert grant.upload_id in (await files.gc(older_than=0)).uploads
        with pytest.raises(NotFound):
            await files.complete_upload(grant.upload_id)
        aborted = await files.upload_grant("chk", size=10, content_type="text/plain")
        await files.abort_upload(aborted.upload_id)
        with pytest.raises(NotFound):
            await files.complete_upload(aborted.upload_id)
        assert not await files.exists("chk")

    async def test_multipart_upload(self, files: AsyncFileStore) -> None:
        part_size = files.blobs.min_part_size
        data = payload(part_size * 2 + 10, 7)
        grant = await files.upload_grant(
            "mp.bin", size=len(data), content_type="application/octet-stream", part_size=part_size
        )
        assert [p.size for p in grant.parts] == [part_size, part_size, 10]
        tags = []
        for part in grant.parts:
            at = (part.part_number - 1) * part_size
            tag = await self.send_part(files, part, data[at : at + part.size])
            tags.append({"part_number": part.part_number, "etag": tag})
        with pytest.raises(ValidationError) as e:
            await files.complete_upload(grant.upload_id, tags[:2])
        assert code_of(e) == "upload_incomplete"
        info = await files.complete_upload(grant.upload_id, tags)
        assert info.etag == hashlib.sha256(data).hexdigest()
        assert await files.read("mp.bin", start=-10) == data[-10:]
        assert await files.complete_upload(grant.upload_id, tags) == info
        with pytest.raises(ValidationError):
            await files.upload_grant("x", size=10, content_type="text/plain", part_size=1)
