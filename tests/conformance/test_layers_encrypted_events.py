"""The conformance suite through the encryption, events and relations layers, alone and
stacked (also with the cache and access-control layers), sync and async, on the memory
backend and on SQLite; the events layer with its SQL outbox also on PostgreSQL and MariaDB.

Which attributes are encrypted depends on the model: the suite filters on every attribute of
``Item``, so its items pass through unencrypted (the layer's item, etag and batch paths still
run); ``Profile`` encrypts nested, list-element and bytes paths in place; ``Doc`` and
``Numbered`` encrypt a text attribute in place; ``Counter`` keeps its integer ``value``
encrypted in a ``sealed_model`` store (the concurrent ``if_match`` increments run on it).
"""

from __future__ import annotations

from typing import Any

from tests.conftest import MYSQL_URL, POSTGRES_URL

import persisty
import persisty.aio
from persisty.layers import (
    Change,
    KeyRing,
    Policy,
    Principal,
    cached,
    encrypted,
    observed,
    related,
    sealed_model,
    secured,
)
from persisty.store import AsyncDatabase, AsyncStore, Database, Store
from persisty.testing import (
    AsyncPathConformance,
    AsyncPutExpiryIncrementConformance,
    AsyncStoreConformance,
    PathConformance,
    PutExpiryIncrementConformance,
    StoreConformance,
)
from persisty.testing.models import Counter

KEYS = KeyRing({"old": KeyRing.new_key(), "new": KeyRing.new_key()}, current="new")
FIELDS = {
    "profile": ["address.city", "history[].street", "avatar"],
    "doc": ["title"],
    "numbered": ["=name"],
    "item": [],
    "tally": [],
    "lease": ["note"],
}
SEALED_COUNTER = sealed_model(Counter, ["value"], name="sealed_counter")


def _failing_hook(change: Change) -> None:
    raise RuntimeError("a hook that always fails: writes must not notice")


class _Layers:
    url = "memory://"
    layers: tuple[str, ...] = ("encrypted",)
    increment_rounds = 10  # each increment through these layers is a read and a pinned write

    def _remember(self, db: Any) -> Any:
        self.__dict__.setdefault("_dbs", []).append(db)
        return db

    def _database_of(self, store: Any) -> Any:
        for db in self.__dict__.get("_dbs", []):
            if any(s is store for s in db._stores.values()):
                return db
        raise AssertionError("store of an unknown database")

    def _wrap(self, store: Any) -> Any:
        wrapped = store
        for layer in self.layers:
            if layer == "encrypted":
                if store.meta.name == "counter":
                    wrapped = self._database_of(store).store(SEALED_COUNTER)
                    wrapped = encrypted(wrapped, ["value"], KEYS)
                else:
                    wrapped = encrypted(wrapped, FIELDS[store.meta.name], KEYS)
            elif layer == "events":
                wrapped = observed(wrapped)
                wrapped.on_change(_failing_hook)
                seen = self.__dict__.setdefault("_seen", [])
                wrapped.on_change(seen.append)
            elif layer == "outbox":
                wrapped = observed(wrapped, outbox=True)
                wrapped.on_change(_failing_hook)
                seen = self.__dict__.setdefault("_seen", [])
                wrapped.on_change(seen.append)
            elif layer == "related":
                wrapped = related(wrapped, self._database_of(store))
            elif layer == "cache":
                wrapped = cached(wrapped, max_items=1000)
            elif layer == "secured":
                wrapped = secured(wrapped, Policy.allow_all(), Principal("tester"))
        return wrapped


class _Sync(_Layers, StoreConformance, PutExpiryIncrementConformance, PathConformance):
    def open_database(self, namespace: str) -> Database:
        return self._remember(persisty.connect(self.url, namespace=namespace))  # type: ignore[no-any-return]

    def drop(self, database: Database) -> None:
        if hasattr(database, "drop_tables"):
            database.drop_tables()

    def wrap(self, store: Store[Any]) -> Store[Any]:
        return self._wrap(store)  # type: ignore[no-any-return]


class _Async(
    _Layers, AsyncStoreConformance, AsyncPutExpiryIncrementConformance, AsyncPathConformance
):
    async def open_database(self, namespace: str) -> AsyncDatabase:
        return self._remember(persisty.aio.connect(self.url, namespace=namespace))  # type: ignore[no-any-return]

    async def drop(self, database: AsyncDatabase) -> None:
        if hasattr(database, "drop_tables"):
            await database.drop_tables()

    async def wrap(self, store: AsyncStore[Any]) -> AsyncStore[Any]:
        return self._wrap(store)  # type: ignore[no-any-return]


class TestEventsMemory(_Sync):
    layers = ("events",)


class TestEventsSqliteAsync(_Async):
    url = "sqlite://"
    layers = ("events",)


class TestOutboxSqlite(_Sync):
    url = "sqlite://"
    layers = ("outbox",)


class TestOutboxPostgresAsync(_Async):
    url = POSTGRES_URL
    layers = ("outbox",)


class TestOutboxMariaDB(_Sync):
    url = MYSQL_URL
    layers = ("outbox", "encrypted")


class TestEventsOverEncryptedMemoryAsync(_Async):
    layers = ("encrypted", "events")


class TestEncryptedOverEventsSqlite(_Sync):
    url = "sqlite://"
    layers = ("events", "encrypted")


class TestAllStackedMemoryAsync(_Async):
    layers = ("encrypted", "secured", "events", "related", "cache")


class TestRelatedMemory(_Sync):
    layers = ("related",)


class TestRelatedSqliteAsync(_Async):
    url = "sqlite://"
    layers = ("related",)


class TestRelatedOverEventsOverEncryptedSqlite(_Sync):
    url = "sqlite://"
    layers = ("encrypted", "events", "related")


class TestEncryptedMemory(_Sync):
    pass


class TestEncryptedMemoryAsync(_Async):
    pass


class TestEncryptedSqlite(_Sync):
    url = "sqlite://"


class TestEncryptedSqliteAsync(_Async):
    url = "sqlite://"
