"""The file store conformance suite's catalog part (async; ``_files_catalog_sync.py`` is
generated): listing, counting, copies that share a blob, moves, deletes, ``gc`` and
``fsck``."""

from __future__ import annotations

from collections.abc import AsyncIterator

from persisty.files import AsyncFileStore
from persisty.query import F
from persisty.testing._files_base_async import AsyncFileStoreHarness
from persisty.testing._files_data import payload


class AsyncFileCatalogConformance(AsyncFileStoreHarness):
    """Listing, copying, moving, deleting and collecting files."""

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
