"""The stash conformance suite on every backing stash (and the writable stackable ones)."""

from __future__ import annotations

import tempfile
import uuid
from pathlib import Path

from persisty.stash import (
    AsyncCacheStash,
    AsyncDictionaryStash,
    AsyncDirectoryStash,
    AsyncShelveStash,
    AsyncStash,
    AsyncStoreStash,
    CacheStash,
    DelegateStash,
    DictionaryStash,
    DirectoryStash,
    LRUCacheStash,
    ProtectiveStash,
    ShelveStash,
    SortedStash,
    Stash,
    StoreStash,
)
from persisty.testing import AsyncStashConformance, StashConformance

_DIR = Path(tempfile.mkdtemp(prefix="persisty-stash-"))


def _fresh() -> Path:
    return _DIR / uuid.uuid4().hex


class TestDictionary(StashConformance):
    def open_stash(self) -> Stash:
        return DictionaryStash()


class TestDictionaryAsync(AsyncStashConformance):
    async def open_stash(self) -> AsyncStash:
        return AsyncDictionaryStash()


class TestDirectory(StashConformance):
    def open_stash(self) -> Stash:
        return DirectoryStash(_fresh())


class TestDirectoryMsgpack(StashConformance):
    def open_stash(self) -> Stash:
        return DirectoryStash(_fresh(), "v-{name}.bin", codec="msgpack")


class TestDirectoryAsync(AsyncStashConformance):
    async def open_stash(self) -> AsyncStash:
        return AsyncDirectoryStash(_fresh())


class TestShelve(StashConformance):
    def open_stash(self) -> Stash:
        return ShelveStash(_fresh() / "shelf.db")


class TestShelveAsync(AsyncStashConformance):
    async def open_stash(self) -> AsyncStash:
        return AsyncShelveStash(_fresh() / "shelf.db")


class TestStoreMemoryPickle(StashConformance):
    def open_stash(self) -> Stash:
        return StoreStash("memory://", "conf", codec="pickle")


class TestCacheOverStore(StashConformance):
    def open_stash(self) -> Stash:
        return CacheStash(StoreStash("memory://", "conf"))


class TestCacheOverStoreAsync(AsyncStashConformance):
    async def open_stash(self) -> AsyncStash:
        return AsyncCacheStash(AsyncStoreStash("memory://", "conf"))


class TestStackedDelegates(StashConformance):
    def open_stash(self) -> Stash:
        return SortedStash(ProtectiveStash(DelegateStash(LRUCacheStash(5000, DictionaryStash()))))
