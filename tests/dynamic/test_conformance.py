"""The conformance suite on a generated class: the suite's ``Item`` replaced by the class a
catalog generates from ``ITEM_SPEC``, its store opened through ``catalog.store`` (the
dynamic store), on every backend, sync and async."""

from __future__ import annotations

import importlib
import tempfile
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import strategies as st
from tests.conftest import DYNAMODB_URL, MYSQL_URL, POSTGRES_URL, REDIS_URL
from tests.dynamic._specs import ITEM_SPEC

import persisty
import persisty.aio
import persisty.testing._async as suite_async
import persisty.testing._data as suite_data
import persisty.testing._secrecy._async as secrecy_async
import persisty.testing._secrecy._sync as secrecy_sync
import persisty.testing._sync as suite_sync
from persisty.dynamic import AsyncDynamicStore, DynamicStore, catalog
from persisty.layers import KeyRing, Policy, Principal, cached, encrypted, observed, secured
from persisty.model import meta_of
from persisty.store import AsyncDatabase, AsyncStore, Database, Store
from persisty.testing import AsyncStoreConformance, StoreConformance
from persisty.testing._store import _async as parts_async
from persisty.testing._store import _sync as parts_sync

_PARTS = ("base", "crud", "search", "batch")
_MODULES = (
    suite_sync,
    suite_async,
    suite_data,
    secrecy_sync,
    secrecy_async,
    *(
        importlib.import_module(f"{pkg.__name__}.{p}")
        for pkg in (parts_sync, parts_async)
        for p in _PARTS
    ),
)


def _swap(monkeypatch: pytest.MonkeyPatch, cls: type[Any]) -> None:
    color = meta_of(cls).by_name["color"].enum_type
    for module in _MODULES:
        monkeypatch.setattr(module, "Item", cls, raising=False)
        if hasattr(module, "ITEM"):
            monkeypatch.setattr(module, "ITEM", meta_of(cls))
        if hasattr(module, "Color"):
            monkeypatch.setattr(module, "Color", color)
    assert color is not None
    monkeypatch.setitem(
        suite_data._VALUES, "color", st.one_of(st.none(), st.sampled_from(list(color)))
    )


class _Generated(StoreConformance):
    url = "memory://"

    def open_database(self, namespace: str) -> Database:
        return persisty.connect(self.url, namespace=namespace)

    @pytest.fixture(autouse=True)
    def generated(self, database: Database, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
        cat = catalog(database)
        d = cat.define(ITEM_SPEC)
        self.cat = cat
        _swap(monkeypatch, cat.class_of(d))
        yield
        cat.close()  # its LISTEN connection: one left open per test exhausts PostgreSQL

    @pytest.fixture
    def items(self, database: Database, generated: None) -> Store[Any]:
        store = self.cat.store("item")
        assert isinstance(store, DynamicStore)
        return self.wrap(store)


class _GeneratedAsync(AsyncStoreConformance):
    url = "memory://"

    async def open_database(self, namespace: str) -> AsyncDatabase:
        return persisty.aio.connect(self.url, namespace=namespace)

    @pytest.fixture(autouse=True)
    async def generated(
        self, database: AsyncDatabase, monkeypatch: pytest.MonkeyPatch
    ) -> AsyncIterator[None]:
        cat = catalog(database)
        d = await cat.define(ITEM_SPEC)
        self.cat = cat
        _swap(monkeypatch, cat.class_of(d))
        yield
        await cat.close()

    @pytest.fixture
    async def items(self, database: AsyncDatabase, generated: None) -> AsyncStore[Any]:
        store = await self.cat.store("item")
        assert isinstance(store, AsyncDynamicStore)
        return await self.wrap(store)


_DIR = Path(tempfile.mkdtemp(prefix="persisty-dynamic-"))


class TestMemory(_Generated):
    url = "memory://"


class TestMemoryAsync(_GeneratedAsync):
    url = "memory://"


class TestDirectory(_Generated):
    url = f"file://{_DIR / 'dir'}"


class TestDirectoryAsync(_GeneratedAsync):
    url = f"file://{_DIR / 'dir-async'}"


class TestSqlite(_Generated):
    url = f"sqlite:///{_DIR / 'gen.db'}"


class TestSqliteAsync(_GeneratedAsync):
    url = f"sqlite:///{_DIR / 'gen-async.db'}"


class TestPostgres(_Generated):
    url = POSTGRES_URL


class TestPostgresAsync(_GeneratedAsync):
    url = POSTGRES_URL


class TestMariaDB(_Generated):
    url = MYSQL_URL


class TestMariaDBAsync(_GeneratedAsync):
    url = MYSQL_URL


class TestRedis(_Generated):
    url = REDIS_URL


class TestRedisAsync(_GeneratedAsync):
    url = REDIS_URL


class TestDynamoDB(_Generated):
    url = DYNAMODB_URL


class TestDynamoDBAsync(_GeneratedAsync):
    url = DYNAMODB_URL


# ---- layers over the dynamic store ---------------------------------------------------------

KEYS = KeyRing({"k1": KeyRing.new_key()}, current="k1")


def _layer(kind: str, store: Any) -> Any:
    if kind == "cached":
        return cached(store, ttl=timedelta(seconds=30), max_items=1000)
    if kind == "secured":
        return secured(store, Policy.allow_all(), Principal("tester", scopes={"user"}))
    if kind == "observed":
        return observed(store)
    # as the layer's own conformance run: the item's attributes stay searchable (the suite
    # runs every filter op on them); encryption of a field is in tests/layers
    return encrypted(store, fields=[], keys=KEYS)


class _Layered(_Generated):
    url = f"sqlite:///{_DIR / 'layers.db'}"
    layer = "cached"

    def wrap(self, store: Store[Any]) -> Store[Any]:
        return _layer(self.layer, store)  # type: ignore[no-any-return]


class _LayeredAsync(_GeneratedAsync):
    url = "memory://"
    layer = "cached"

    async def wrap(self, store: AsyncStore[Any]) -> AsyncStore[Any]:
        return _layer(self.layer, store)  # type: ignore[no-any-return]


class TestCachedSqlite(_Layered):
    layer = "cached"


class TestSecuredSqlite(_Layered):
    layer = "secured"


class TestObservedSqlite(_Layered):
    layer = "observed"


class TestEncryptedSqlite(_Layered):
    layer = "encrypted"


class TestCachedMemoryAsync(_LayeredAsync):
    layer = "cached"


class TestSecuredMemoryAsync(_LayeredAsync):
    layer = "secured"


class TestEncryptedMemoryAsync(_LayeredAsync):
    layer = "encrypted"
