"""Nested paths in the query language: the ``F`` forms, their canonical names, validation
against the model, the layers that must refuse them (hidden, encrypted and sharded
attributes) and the evaluator's reading through ``None``."""

from __future__ import annotations

import pytest
from tests.layers.sharded_models import FOUR_WAYS, Person
from tests.layers.test_encrypted import ring

import persisty
from persisty.errors import Forbidden, ValidationError
from persisty.layers import Policy, Principal, encrypted, secured, shard_model, sharded
from persisty.model import meta_of
from persisty.query import (
    F,
    attrs_of,
    filter_from_json,
    filter_from_query,
    filter_to_json,
    matches,
    paths_of,
    root_of,
    validate_filter,
)
from persisty.testing.models import Address, Profile, Spot, Venue

PROFILE = meta_of(Profile)
VENUE = meta_of(Venue)


def test_the_forms_of_a_path() -> None:
    assert F.spot.city == F["spot.city"]
    assert (F.spot.city == "x").attr == "spot.city"
    assert (F.visits[2].rank > 1).attr == "visits[2].rank"
    assert (F.extra["a.b"] == 1).attr == "/extra/a.b"
    assert (F["/extra"]["x~y/z"] == 1).attr == "/extra/x~0y~1z"
    assert (F["/visits"][0] == 1).attr == "/visits/0"
    assert repr(F.extra["a.b"] == 1) == "(F['/extra/a.b'] eq 1)"
    assert repr(F.spot.city) == "F.spot.city"
    with pytest.raises(TypeError):
        F.visits[-1]
    with pytest.raises(AttributeError):
        F.spot.__deepcopy__  # noqa: B018


def test_canonical_names_and_roots() -> None:
    f = validate_filter((F["/spot/city"] == "Osaka") & (F.extra["a.b"] >= "2"), VENUE)
    assert paths_of(f) == {"spot.city", "/extra/a.b"}
    assert attrs_of(f) == {"spot", "extra"}
    assert root_of("/labels/~1") == "labels" and root_of("visits[0].city") == "visits"
    assert validate_filter(F.extra.a == "3", VENUE) == (F.extra.a == 3)
    assert filter_from_json(filter_to_json(f)) == f
    assert filter_from_query([("spot.city", "Osaka"), ("spot.rank__gte", "2")]) == (
        (F.spot.city == "Osaka") & (F.spot.rank >= "2")
    )


def test_validation_names_the_path() -> None:
    for bad, field in (
        (F.spot.town == "x", "spot.town"),
        (F.nope.city == "x", "nope.city"),
        (F.spot.rank.icontains("1"), "spot.rank"),
        (F.spot.open == "perhaps", "spot.open"),
        (F.spot.geo.latitude > None, "spot.geo.latitude"),
        (F.visits.x == 1, "visits.x"),
    ):
        with pytest.raises(ValidationError) as e:
            validate_filter(bad, VENUE)
        assert e.value.field == field, bad


def test_reading_through_none_missing_keys_and_short_lists() -> None:
    v = Venue(id="v", spot=None, visits=[Spot("Kobe")], extra={"a": 1})
    assert matches(F.spot.city == None, v, VENUE)  # noqa: E711
    assert matches(F.spot.city != "Osaka", v, VENUE)
    assert not matches(F.spot.rank < 5, v, VENUE)
    assert matches(F.visits[0].city == "Kobe", v, VENUE)
    assert not matches(F.visits[3].city.exists(), v, VENUE)
    assert matches(F.extra.b.exists(False), v, VENUE) and matches(F.extra.a == 1, v, VENUE)


def test_a_hidden_attribute_is_refused_through_its_paths() -> None:
    raw = persisty.connect("memory://").store(Profile)
    raw.create(Profile(id="p", address=Address("s", "Osaka")))
    mine = secured(raw, Policy(readable=["id", "extra"]), Principal("ann", scopes={"user"}))
    for bad in (F.address.city == "Osaka", F["/address/city"].exists()):
        with pytest.raises(Forbidden) as e:
            mine.search(bad)
        assert e.value.field == "address"


def test_encrypted_and_sharded_paths_are_refused() -> None:
    db = persisty.connect("memory://")
    notes = encrypted(db.store(Profile), fields=["address.city"], keys=ring())
    notes.create(Profile(id="p", address=Address("s", "Osaka")))
    with pytest.raises(ValidationError) as e:
        notes.search(F.address.street == "s")
    assert e.value.field == "address.street"
    assert [p.id for p in notes.search(F.extra.a.exists(False)).items] == ["p"]
    people = sharded(db.store(shard_model(Person, FOUR_WAYS)), FOUR_WAYS)
    with pytest.raises(ValidationError) as e:
        people.search(F.location.city == "Osaka")
    assert e.value.field == "location.city"
