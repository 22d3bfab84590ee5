"""The conformance suite on the directory backend (file://), sync and async."""

from __future__ import annotations

from pathlib import Path

import pytest

import persisty
import persisty.aio
from persisty.store import AsyncDatabase, Database
from persisty.testing import (
    AsyncCommitConformance,
    AsyncDatabaseLifecycleConformance,
    AsyncNestedFilterConformance,
    AsyncPathConformance,
    AsyncPutExpiryIncrementConformance,
    AsyncStoreConformance,
    CommitConformance,
    DatabaseLifecycleConformance,
    NestedFilterConformance,
    PathConformance,
    PutExpiryIncrementConformance,
    StoreConformance,
)


class TestDirectory(
    StoreConformance,
    PutExpiryIncrementConformance,
    PathConformance,
    NestedFilterConformance,
    CommitConformance,
    DatabaseLifecycleConformance,
):
    @pytest.fixture(autouse=True)
    def _root(self, tmp_path: Path) -> None:
        self.root = tmp_path

    def open_database(self, namespace: str) -> Database:
        return persisty.connect(f"file://{self.root}", namespace=namespace)


class TestDirectoryAsync(
    AsyncStoreConformance,
    AsyncPutExpiryIncrementConformance,
    AsyncPathConformance,
    AsyncNestedFilterConformance,
    AsyncCommitConformance,
    AsyncDatabaseLifecycleConformance,
):
    @pytest.fixture(autouse=True)
    def _root(self, tmp_path: Path) -> None:
        self.root = tmp_path

    async def open_database(self, namespace: str) -> AsyncDatabase:
        return persisty.aio.connect(f"file://{self.root}", namespace=namespace)
