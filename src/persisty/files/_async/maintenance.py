"""Maintenance of a file store (async; the sync twin ``_sync/maintenance.py`` is
generated): ``gc`` removes what failed writes and expired grants left, ``fsck`` checks
every file's blob."""

from __future__ import annotations

import contextlib
from datetime import timedelta

from persisty.errors import (
    IntegrityError,
    NotFound,
    PersistyError,
)
from persisty.files._async.base import AsyncFileStoreBase
from persisty.files._content import Digest
from persisty.files._model import FsckProblem, FsckReport, GcReport, blob_time, seconds
from persisty.query import F


class AsyncFileMaintenance(AsyncFileStoreBase):
    """The maintenance half of a file store: ``gc`` and ``fsck``."""

    async def _referenced(self) -> set[str]:
        """The first 32 characters of every blob a file or a pending upload uses (a part
        blob shares them with its upload's staging blob)."""
        used = {i.blob[:32] async for i in self.catalog.search_all(F.store == self.name)}
        now = self.clock()
        async for u in self.uploads.search_all(F.store == self.name):
            if u.state == "pending" and u.expires_at >= now:
                used.add(u.staging[:32])
        return used

    async def gc(self, older_than: float | timedelta = 3600.0) -> GcReport:
        """Remove expired upload grants and the blobs nothing uses that are older than
        ``older_than`` (what crashed or failed writes left).

        Example::

            report = await files.gc(older_than=timedelta(hours=1))
            report.blobs, report.uploads
        """
        age = seconds(older_than, 3600.0)
        now = self.clock()
        report = GcReport()
        async for u in self.uploads.search_all(F.store == self.name):
            expired = u.state == "pending" and u.expires_at < now
            if expired or (u.state == "done" and u.created_at < now - timedelta(seconds=age)):
                if expired:
                    with contextlib.suppress(PersistyError):
                        await self.blobs.abort_upload(u)
                with contextlib.suppress(NotFound):
                    await self.uploads.delete(u.id)
                report.uploads.append(u.id)
        used = await self._referenced()
        cutoff = now - timedelta(seconds=age)
        for blob in await self.blobs.ids():
            if blob[:32] not in used and blob_time(blob) <= cutoff:
                await self.blobs.delete(blob)
                report.blobs.append(blob)
        return report

    async def fsck(self) -> FsckReport:
        """Check every file's blob (present, size, SHA-256) and list the orphaned blobs
        and the expired grants (``gc`` removes those).

        Example::

            report = await files.fsck()
            report.ok, report.problems, report.orphans
        """
        report = FsckReport()
        async for info in self.catalog.search_all(F.store == self.name):
            report.checked += 1
            digest = Digest()
            try:
                async for piece in self.blobs.read(info.blob, 0, info.size):
                    digest.add(piece)
            except IntegrityError as e:
                report.problems.append(FsckProblem(info.key, info.blob, "missing_blob", e.message))
                continue
            if digest.size != info.size:
                report.problems.append(
                    FsckProblem(
                        info.key, info.blob, "size_mismatch", f"{digest.size} != {info.size}"
                    )
                )
            elif digest.hexdigest() != info.etag:
                report.problems.append(
                    FsckProblem(info.key, info.blob, "digest_mismatch", digest.hexdigest())
                )
        used = await self._referenced()
        report.orphans = [b for b in await self.blobs.ids() if b[:32] not in used]
        now = self.clock()
        report.expired_uploads = [
            u.id
            async for u in self.uploads.search_all(F.store == self.name)
            if u.state == "pending" and u.expires_at < now
        ]
        return report
