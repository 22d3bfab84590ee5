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
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from persisty.errors import NotFound, PreconditionFailed, ValidationError
from persisty.files import AsyncFileStore, FileInfo, Limits
from persisty.testing._concurrency import run_concurrently_async
from persisty.testing._files_base_async import code_of
from persisty.testing._files_catalog_async import AsyncFileCatalogConformance
from persisty.testing._files_data import BAD_KEYS, MIB_PAYLOAD_SHA256, PNG, payload
from persisty.testing._files_uploads_async import AsyncFileUploadConformance


class AsyncFileStoreConformance(AsyncFileCatalogConformance, AsyncFileUploadConformance):
    """The file store contract: writing and reading, conditional writes and limits here,
    the catalog and the grants in the parts it inherits. Subclasses implement
    :meth:`open_files`."""

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
        assert code_of(e) == "content_type_mismatch"
        with pytest.raises(ValidationError) as e:
            await files.put("p", PNG, content_type="text/plain")
        assert code_of(e) == "content_type_mismatch"
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
            assert code_of(e) == "invalid_range"

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
            assert code_of(e) == "invalid_key", key
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
                assert code_of(e) == code
            with pytest.raises(ValidationError) as e:
                await files.put("bad.txt", b"hello", expected_sha256="0" * 64)
            assert code_of(e) == "digest_mismatch"
            good = hashlib.sha256(b"hello").hexdigest()
            assert (await files.put("t.txt", b"hello", expected_sha256=good)).etag == good
            assert not await files.exists("bad")
            assert (await files.fsck()).orphans == []
            with pytest.raises(ValidationError) as e:
                await files.upload_grant("g", size=100_001, content_type="text/plain")
            assert code_of(e) == "file_too_large"
            with pytest.raises(ValidationError) as e:
                await files.upload_grant("g", size=10, content_type="application/pdf")
            assert code_of(e) == "content_type_not_allowed"
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
