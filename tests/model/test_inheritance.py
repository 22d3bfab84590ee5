"""``@stored`` classes inherit as dataclasses do (issue 11, item 4), and constraints on an
optional attribute apply to the value when it is not ``None``."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from uuid import UUID

import pytest

import persisty
from persisty import Attr, F, stored
from persisty.errors import ValidationError
from persisty.model import meta_of


@stored
class Base:
    id: str
    x: int = Attr(ge=0, default=0)


@stored
class Child(Base):
    y: str = "y"


@stored
class Narrowed(Base):
    id: str = Attr(max_length=5)  # only the key redeclared


class Plain:
    n: int = 3
    label: str | None = None


@dataclasses.dataclass
class Data:
    tags: list[str] = dataclasses.field(default_factory=list)


@stored(key="code")
class Mixed(Plain, Data):
    code: str


@stored
class Generated:
    id: UUID
    created_at: datetime = Attr(generated="created", default=None)


@stored
class GeneratedChild(Generated):
    note: str = ""


@stored
class Person:
    id: str
    age: int | None = Attr(ge=0, le=150, default=None)
    nick: str | None = Attr(min_length=2, default=None)


def _names(cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


def test_fields_of_the_bases_come_first() -> None:
    assert _names(Child) == ["id", "x", "y"]
    assert _names(Narrowed) == ["id", "x"]
    assert set(_names(Mixed)) == {"n", "label", "tags", "code"} and _names(Mixed)[-1] == "code"
    assert _names(GeneratedChild) == ["id", "created_at", "note"]
    assert meta_of(Child).name == "child" and meta_of(Child).key.attrs == ("id",)
    assert meta_of(Mixed).key.attrs == ("code",)
    assert issubclass(Child, Base)


def test_each_subclass_has_its_own_store_and_inherits_constraints() -> None:
    db = persisty.connect("memory://")
    children, bases = db.store(Child), db.store(Base)
    c = children.create(Child(id="a", x=1))
    assert children.read("a") == c and bases.read("a") is None
    with pytest.raises(ValidationError) as e:
        children.create(Child(id="b", x=-1))
    assert e.value.field == "x"
    with pytest.raises(ValidationError) as e:
        db.store(Narrowed).create(Narrowed(id="toolong"))
    assert e.value.field == "id"
    m = db.store(Mixed).create(Mixed(code="k", tags=["t"]))
    assert (m.n, m.label, m.tags) == (3, None, ["t"])
    g = db.store(GeneratedChild).create(GeneratedChild(note="n"))  # type: ignore[call-arg]
    assert isinstance(g.id, UUID) and g.created_at is not None
    assert db.store(Child).count(F.x == 1) == 1


def test_constraints_on_optional_attributes() -> None:
    people = persisty.connect("memory://").store(Person)
    assert people.create(Person(id="a")).age is None
    assert people.create(Person(id="b", age=0, nick="bo")).age == 0
    for bad in ({"age": -1}, {"age": 151}, {"nick": "x"}):
        with pytest.raises(ValidationError) as e:
            people.create(Person(id="c", **bad))
        assert e.value.field == next(iter(bad))
    with pytest.raises(ValidationError):
        people.patch("a", {"age": -5})
    schema = meta_of(Person).json_schema("create")["properties"]["age"]
    assert {"type": "integer", "minimum": 0, "maximum": 150} in schema["anyOf"]
