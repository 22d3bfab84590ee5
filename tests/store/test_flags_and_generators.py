"""Attribute flags (creatable, updatable, sortable, readable) and generators, as the shared
store logic applies them on every backend (checked here on memory and file)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path

import pytest

import persisty
from persisty import Attr, F, ValidationError, meta_of, stored
from persisty.store import Clock, Store


@stored(label="name", summary=["name", "role"])
class Account:
    id: int = Attr(generated="sequence", default=None)
    name: str
    role: str = Attr(default="member", creatable=False)
    email: str = Attr(default="", updatable=False)
    secret: str = Attr(default="", readable=False, sortable=False)
    touched: datetime = Attr(generated="updated", default=None)


@pytest.fixture(params=["memory", "file"])
def accounts(request: pytest.FixtureRequest, tmp_path: Path) -> Store[Account]:
    url = "memory://" if request.param == "memory" else f"file://{tmp_path}"
    return persisty.connect(url).store(Account)


def test_sequence_generates_increasing_keys(accounts: Store[Account]) -> None:
    a = accounts.create(Account(name="a"))
    b = accounts.create(Account(name="b"))
    assert (a.id, b.id) == (1, 2)
    assert accounts.read("2") == b


def test_non_creatable_attributes_get_their_default(accounts: Store[Account]) -> None:
    a = accounts.create(Account(name="a", role="admin"))
    assert a.role == "member"


def test_non_updatable_attributes_keep_their_value(accounts: Store[Account]) -> None:
    a = accounts.create(Account(name="a", email="a@x"))
    u = accounts.update(dataclasses.replace(a, email="evil@x", name="b"))
    assert (u.email, u.name) == ("a@x", "b")
    with pytest.raises(ValidationError) as e:
        accounts.patch(str(a.id), {"email": "evil@x"})
    assert e.value.field == "email"
    with pytest.raises(ValidationError) as e:
        accounts.patch(str(a.id), {"touched": "2024-01-01T00:00:00Z"})
    assert e.value.field == "touched"


def test_unsortable_attributes_cannot_order(accounts: Store[Account]) -> None:
    with pytest.raises(ValidationError) as e:
        accounts.search(order=[+F.secret])
    assert e.value.field == "secret"


def test_unreadable_attributes_are_left_out_of_the_read_schema() -> None:
    meta = meta_of(Account)
    assert "secret" not in meta.json_schema("read")["properties"]
    assert "secret" in meta.json_schema("create")["properties"]
    assert meta.label == "name" and meta.summary == ("name", "role")


def test_generated_timestamps_come_from_the_clock() -> None:
    store = persisty.connect("memory://").store(Account)
    when = datetime(2030, 5, 6, tzinfo=UTC)
    store.clock = Clock(lambda: when)  # type: ignore[attr-defined]
    a = store.create(Account(name="a"))
    assert a.touched == when
