"""The conformance suite on an out-of-tree backend: ``tests/toy_backend`` is a separate
package (installed into .venv by scripts/setup) that adds ``toy://`` through the
``persisty.backends`` entry point and uses only persisty's public surface."""

from __future__ import annotations

from importlib.metadata import entry_points

import pytest

import persisty
import persisty.aio
from persisty.backends import ENTRY_POINT_GROUP, register, schemes
from persisty.errors import ValidationError
from persisty.store import AsyncDatabase, Database
from persisty.testing import (
    AsyncPutExpiryIncrementConformance,
    AsyncStoreConformance,
    PutExpiryIncrementConformance,
    StoreConformance,
)


class TestToy(StoreConformance, PutExpiryIncrementConformance):
    def open_database(self, namespace: str) -> Database:
        return persisty.connect("toy://", namespace=namespace)


class TestToyAsync(AsyncStoreConformance, AsyncPutExpiryIncrementConformance):
    async def open_database(self, namespace: str) -> AsyncDatabase:
        return persisty.aio.connect("toy://", namespace=namespace)


def test_toy_comes_from_an_installed_entry_point() -> None:
    (ep,) = [e for e in entry_points(group=ENTRY_POINT_GROUP) if e.name == "toy"]
    assert ep.value == "persisty_toy:BACKEND"
    assert "toy" in schemes()
    db = persisty.connect("toy://")
    assert type(db).__module__ == "persisty_toy"
    assert type(persisty.aio.connect("toy://")).__name__ == "AsyncToyDatabase"


def test_register_adds_a_scheme_and_refuses_non_classes() -> None:
    import persisty_toy  # type: ignore[import-untyped]

    register("toy2", persisty_toy.ToyDatabase, persisty_toy.AsyncToyDatabase)
    assert isinstance(persisty.connect("toy2://"), persisty_toy.ToyDatabase)
    assert "toy2" in schemes()
    with pytest.raises(TypeError):
        register("toy3", persisty_toy.ToyDatabase, "not a class")  # type: ignore[arg-type]
    with pytest.raises(ValidationError) as e:
        register("no such", persisty_toy.ToyDatabase, persisty_toy.AsyncToyDatabase)
    assert e.value.field == "scheme"


def test_an_unknown_scheme_names_the_known_ones() -> None:
    with pytest.raises(ValidationError) as e:
        persisty.connect("nosuch://")
    assert e.value.field == "url" and "toy" in str(e.value) and "sqlite" in str(e.value)
