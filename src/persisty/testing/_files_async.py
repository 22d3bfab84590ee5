"""The file store conformance suite (async; ``_files_sync.py`` is generated): the contract
of ``persisty.files`` as tests, run on memory, chunks on every engine, directories and S3.

Subclass it and say how to open a file store::

    class TestMyFiles(AsyncFileStoreConformance):
        async def open_files(self, name):
            return persisty.aio.connect("sqlite://").files(name)

Each test gets a file store with a fresh name; afterwards its files are deleted, ``gc``
runs and the store is closed. Backends whose grants are served over HTTP (S3) are driven
with httpx; hosted backends through ``accept_upload``/``accept_part``, as their routes would.
"""

from __future__ import annotations

import hashlib
import io
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from persisty.errors import NotFound, PersistyError, PreconditionFailed, ValidationError
from persisty.files import AsyncFileStore, FileInfo, Limits, UploadGrant, UploadPart
from persisty.query import F
from persisty.testing._concurrency import run_concurrently_async

PNG = b"\x89PNG\r\n\x1a\n" + bytes(100)
BAD_KEYS = [
    "../etc/passwd",
    "/abs",
    "a//b",
    "a\x00b",
    "x" * 1025,
    "",
    "a/./b",
    "a/..",
    "a\\b",
    "a\nb",
    "a/",
]


def payload(size: int, seed: int = 0) -> bytes:
    """``size`` deterministic pseudo-random bytes (the same on every backend)."""
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(f"{seed}:{counter}".encode()).digest()
        counter += 1
    return bytes(out[:size])


# what the same 1 MiB payload must give on every backend
MIB_PAYLOAD_SHA256 = hashlib.sha256(payload(1024 * 1024)).hexdigest()


def _code(e: pytest.ExceptionInfo[PersistyError]) -> str:
    return e.value.code


class AsyncFileStoreConformance:
    """The file store contract. Subclasses implement :meth:`open_files`."""

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

    # ---- writing and reading ------------------------------------------------------------

    async def test_put_and_read(self, files: AsyncFileStore) -> None:
        data = payload(700_000)
        info = await files.put("docs/a.bin", data, filename="a.bin", metadata={"x": "1"})
        assert isinstance(info, FileInfo)
        assert (info.key, info.size, info.etag) == (
            "docs/a.bin",
            len(data),
            hashlib.sha256(data).hexdigest(),
        )
        assert info.filename == "a.bin" and info.metadata == {"x": "1"}
        assert info.created_at == info.updated_at
        assert await files.read("docs/a.bin") == data
        assert await files.info("docs/a.bin") == info
        reader = await files.open("docs/a.bin")
        assert reader.info == info
        assert b"".join([piece async for piece in reader]) == data

    async def test_sources(self, files: AsyncFileStore) -> None:
        data = payload(300_000, 1)
        pieces = [data[i : i + 7000] for i in range(0, len(data), 7000)]
        sources: list[tuple[str, Any]] = [
            ("bytes", data),
            ("file", io.BytesIO(data)),
            ("iterable", iter(pieces)),
            ("list", pieces),
        ]
        for key, source in sources:
            info = await files.put(key, source)
            assert info.size == len(data) and await files.read(key) == data

    async def test_empty_file(self, files: AsyncFileStore) -> None:
        info = await files.put("empty", b"")
        assert info.size == 0 and info.etag == hashlib.sha256(b"").hexdigest()
        assert await files.read("empty") == b""

    async def test_same_payload_same_record(self, files: AsyncFileStore) -> None:
        info = await files.put("payload.bin", payload(1024 * 1024))
        assert (info.etag, info.size, info.content_type) == (
            MIB_PAYLOAD_SHA256,
            1024 * 1024,
            "application/octet-stream",
        )

    async def test_content_types(self, files: AsyncFileStore) -> None:
        assert (await files.put("i", PNG)).content_type == "image/png"
        assert (await files.put("t.txt", b"hello")).content_type == "text/plain"
        assert (
            await files.put("t", b"hello", content_type="text/x-note")
        ).content_type == "text/x-note"
        with pytest.raises(ValidationError) as e:
            await files.put("p.png", b"not a png", content_type="image/png")
        assert _code(e) == "content_type_mismatch"
        with pytest.raises(ValidationError) as e:
            await files.put("p", PNG, content_type="text/plain")
        assert _code(e) == "content_type_mismatch"
        with pytest.raises(ValidationError) as e:
            await files.put("p", b"x", content_type="not a type")
        assert e.value.field == "content_type"
        assert not await files.exists("p.png") and not await files.exists("p")

    async def test_ranges(self, files: AsyncFileStore) -> None:
        data = payload(600_000, 2)
        await files.put("r", data)
        for start, end in [
            (0, 10),
            (-10, None),
            (5, 5),
            (262_143, 262_145),
            (100, 600_000),
            (599_999, None),
            (0, 10**9),
            (-(10**9), 3),
            (600_000, None),
            (10, -10),
        ]:
            assert await files.read("r", start=start, end=end) == data[start:end]
        reader = await files.open("r", start=-10)
        assert (reader.start, reader.end) == (len(data) - 10, len(data))
        for start, end in [(600_001, None), (10, 5), (-5, -10)]:
            with pytest.raises(ValidationError) as e:
                await files.read("r", start=start, end=end)
            assert _code(e) == "invalid_range"

    @settings(
        max_examples=20,
        deadline=None,
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.differing_executors,
        ],
    )
    @given(start=st.integers(-70_000, 70_000), end=st.none() | st.integers(-70_000, 70_000))
    async def test_ranges_match_slicing(
        self, files: AsyncFileStore, start: int, end: int | None
    ) -> None:
        data = payload(65_537, 3)
        if not await files.exists("h"):
            await files.put("h", data)
        expected = data[start:end]
        size = len(data)
        s = max(0, size + start) if start < 0 else start
        e = size if end is None else (max(0, size + end) if end < 0 else min(end, size))
        if s > size or s > e:
            with pytest.raises(ValidationError):
                await files.read("h", start=start, end=end)
        else:
            assert await files.read("h", start=start, end=end) == expected

    async def test_missing(self, files: AsyncFileStore) -> None:
        with pytest.raises(NotFound):
            await files.info("nope")
        with pytest.raises(NotFound):
            await files.read("nope")
        with pytest.raises(NotFound):
            await files.delete("nope")
        with pytest.raises(NotFound):
            await files.copy("nope", "b")
        assert not await files.exists("nope")

    async def test_info_batch(self, files: AsyncFileStore) -> None:
        a = await files.put("a", b"1")
        b = await files.put("b", b"22")
        assert await files.info_batch(["b", "missing", "a"]) == [b, None, a]

    async def test_invalid_keys(self, files: AsyncFileStore) -> None:
        for key in BAD_KEYS:
            with pytest.raises(ValidationError) as e:
                await files.put(key, b"x")
            assert _code(e) == "invalid_key", key
            with pytest.raises(ValidationError):
                await files.read(key)
            with pytest.raises(ValidationError):
                await files.upload_grant(key, size=1, content_type="text/plain")
        assert await files.count() == 0
        long_key = "/".join(["é" * 100] * 5)  # 1,004 bytes of UTF-8
        assert (await files.put(long_key, b"ok")).key == long_key
        assert await files.read(long_key) == b"ok"

    # ---- conditional writes -----------------------------------------------------------

    async def test_overwrite_and_conditions(self, files: AsyncFileStore) -> None:
        first = await files.put("c", b"one")
        with pytest.raises(PreconditionFailed):
            await files.put("c", b"two", if_none_match="*")
        with pytest.raises(PreconditionFailed):
            await files.put("c", b"two", if_match="0" * 64)
        with pytest.raises(PreconditionFailed):
            await files.put("new", b"two", if_match=first.etag)
        assert await files.read("c") == b"one"
        second = await files.put("c", b"two", if_match=first.etag)
        assert second.created_at == first.created_at and second.etag != first.etag
        assert await files.read("c") == b"two"
        created = await files.put("d", b"x", if_none_match="*")
        assert created.size == 1
        with pytest.raises(PreconditionFailed):
            await files.delete("c", if_match=first.etag)
        await files.delete("c", if_match=second.etag)
        assert not await files.exists("c")

    async def test_concurrent_if_match(self, files: AsyncFileStore) -> None:
        e0 = (await files.put("hot", b"v0")).etag

        def writer(n: int) -> Any:
            async def work() -> str:
                try:
                    await files.put("hot", f"v{n + 1}".encode(), if_match=e0)
                    return "won"
                except PreconditionFailed:
                    return "lost"

            return work

        outcome = await run_concurrently_async([writer(n) for n in range(self.concurrent_writers)])
        assert outcome.count("won") == 1, outcome
        assert (await files.read("hot")) != b"v0"
        report = await files.gc(older_than=0)
        assert report.blobs == []  # every loser removed its own blob
        assert (await files.fsck()).orphans == []

    # ---- limits -------------------------------------------------------------------------

    async def test_limits(self) -> None:
        files = await self._open(
            Limits(max_size=100_000, min_size=2, content_types=["image/*", "text/plain"])
        )
        try:
            await files.put("ok.png", PNG)
            for data, kind, code in [
                (payload(100_001), "text/plain", "file_too_large"),
                (b"x", "text/plain", "file_too_small"),
                (b"%PDF-1.4 ...", None, "content_type_not_allowed"),
                (b"hello", "application/json", "content_type_not_allowed"),
            ]:
                with pytest.raises(ValidationError) as e:
                    await files.put("bad", data, content_type=kind)
                assert _code(e) == code
            with pytest.raises(ValidationError) as e:
                await files.put("bad.txt", b"hello", expected_sha256="0" * 64)
            assert _code(e) == "digest_mismatch"
            good = hashlib.sha256(b"hello").hexdigest()
            assert (await files.put("t.txt", b"hello", expected_sha256=good)).etag == good
            assert not await files.exists("bad")
            assert (await files.fsck()).orphans == []
            with pytest.raises(ValidationError) as e:
                await files.upload_grant("g", size=100_001, content_type="text/plain")
            assert _code(e) == "file_too_large"
            with pytest.raises(ValidationError) as e:
                await files.upload_grant("g", size=10, content_type="application/pdf")
            assert _code(e) == "content_type_not_allowed"
        finally:
            await self.drop(files)
            await files.close()

    async def test_failed_overwrite_keeps_old_version(self) -> None:
        files = await self._open(Limits(max_size=50_000))
        try:
            old = await files.put("f", b"old")
            with pytest.raises(ValidationError):
                await files.put("f", iter([payload(30_000), payload(30_000)]))
            assert await files.info("f") == old and await files.read("f") == b"old"
        finally:
            await self.drop(files)
            await files.close()

    # ---- listing ------------------------------------------------------------------------

    async def test_list_and_count(self, files: AsyncFileStore) -> None:
        for i in range(7):
            await files.put(f"p/{i}", b"x" * (i + 1))
        await files.put("q/other", b"x")
        page = await files.list("p/")
        assert [i.key for i in page.items] == [f"p/{i}" for i in range(7)]
        assert page.next_page_key is None
        seen: list[str] = []
        page_key = None
        while True:
            page = await files.list("p/", limit=3, page_key=page_key)
            seen.extend(i.key for i in page.items)
            page_key = page.next_page_key
            if page_key is None:
                break
        assert seen == [f"p/{i}" for i in range(7)]
        big = await files.list("p/", filter=F.size >= 5, order=[-F.size])
        assert [i.key for i in big.items] == ["p/6", "p/5", "p/4"]
        assert await files.count() == 8
        assert await files.count(prefix="p/") == 7
        assert await files.count(F.size > 3, prefix="p/") == 4
        other = await self._open()
        try:
            assert await other.count() == 0  # another file store sees none of them
        finally:
            await other.close()

    # ---- copy, move, delete --------------------------------------------------------------

    async def test_copy_shares_blob(self, files: AsyncFileStore) -> None:
        src = await files.put("src", payload(10_000))
        dst = await files.copy("src", "dst")
        assert dst.blob == src.blob and dst.etag == src.etag and dst.key == "dst"
        await files.delete("src")
        assert await files.read("dst") == payload(10_000)
        moved = await files.move("dst", "moved")
        assert moved.etag == src.etag and not await files.exists("dst")
        assert await files.read("moved") == payload(10_000)
        report = await files.fsck()
        assert report.ok and report.orphans == []
        await files.delete("moved")
        assert (await files.fsck()).orphans == []

    async def test_overwrite_releases_old_blob(self, files: AsyncFileStore) -> None:
        await files.put("o", b"one")
        await files.put("o", b"two")
        report = await files.fsck()
        assert report.checked == 1 and report.ok and report.orphans == []

    # ---- gc and fsck ----------------------------------------------------------------------

    async def test_gc_removes_orphans(self, files: AsyncFileStore) -> None:
        await files.put("kept", b"kept")

        async def crashed() -> AsyncIterator[bytes]:
            yield b"partial"

        blob = files.blobs.new_id()
        await files.blobs.write(blob, crashed())  # a write whose catalog switch never came
        report = await files.fsck()
        assert blob in report.orphans and report.ok
        assert (await files.gc(older_than=3600)).blobs == []  # too young
        assert blob in (await files.gc(older_than=0)).blobs
        assert (await files.fsck()).orphans == []
        assert await files.read("kept") == b"kept"

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
            assert _code(e) == "url_expired"

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
        assert _code(e) == "upload_incomplete"
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
            assert _code(e) == code
            assert not await files.exists("chk")
        grant = await files.upload_grant("chk", size=10, content_type="text/plain", expires_in=0)
        with pytest.raises(ValidationError) as e:
            await files.complete_upload(grant.upload_id)
        assert _code(e) == "upload_expired"
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
        assert _code(e) == "upload_incomplete"
        info = await files.complete_upload(grant.upload_id, tags)
        assert info.etag == hashlib.sha256(data).hexdigest()
        assert await files.read("mp.bin", start=-10) == data[-10:]
        assert await files.complete_upload(grant.upload_id, tags) == info
        with pytest.raises(ValidationError):
            await files.upload_grant("x", size=10, content_type="text/plain", part_size=1)
