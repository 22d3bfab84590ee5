"""Path access through the layers that change what a write means: the encryption layer
seals a value written under an encrypted path, the access-control layer requires the
top-level attribute to be writable; and the path grammar itself, property-tested."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import persisty
import persisty.aio
from persisty.errors import Forbidden, ValidationError
from persisty.layers import KeyRing, Policy, Principal, encrypted, sealed_model, secured
from persisty.model import Attr, meta_of, parse_path, stored
from persisty.store import Edit, Increment
from persisty.testing.models import Address, Profile

KEYS = KeyRing({"k1": KeyRing.new_key()}, current="k1")
PROFILE = meta_of(Profile)


def _person() -> Profile:
    return Profile(
        id="p1",
        address=Address("Main St 1", "Osaka"),
        history=[Address("Old St 2", "Kobe")],
        extra={"x": 1},
    )


def test_write_path_under_an_encrypted_path_is_sealed() -> None:
    db = persisty.connect("memory://")
    raw = db.store(Profile)
    store = encrypted(raw, ["address.city", "history[].street"], KEYS)
    store.create(_person())
    new = store.write_path("p1", "address.city", "Tokyo")
    assert new.address == Address("Main St 1", "Tokyo")
    stored = raw.read("p1")
    assert stored is not None and stored.address is not None
    assert "Tokyo" not in stored.address.city and stored.address.street == "Main St 1"
    assert store.read_path("p1", "address.city") == "Tokyo"
    store.patch("p1", {"history[0].street": "Secret Lane", "extra.x": Increment(1)})
    results = store.edit_batch(
        [Edit.patch("p1", {"address.city": "Nagoya"}), Edit.patch("p1", {"extra.y": 2})],
        atomic=True,
    )
    assert all(r.ok for r in results), results
    assert results[0].edit.changes == {"address.city": "Nagoya"}  # the caller's edit
    stored = raw.read("p1")
    assert stored is not None and stored.address is not None
    text = repr(stored)
    assert "Secret Lane" not in text and "Nagoya" not in text
    got = store.read("p1")
    assert got is not None and got.address is not None
    assert got.address.city == "Nagoya" and got.history[0].street == "Secret Lane"
    assert got.extra == {"x": 2, "y": 2}
    # a ciphertext moved to another path of the same item does not open
    moved = raw.read("p1")
    assert moved is not None and moved.address is not None
    raw.write_path("p1", "history[0].street", moved.address.city)
    with pytest.raises(persisty.errors.IntegrityError):
        store.read("p1")


async def test_write_path_sealed_async() -> None:
    db = persisty.aio.connect("memory://")
    raw = db.store(Profile)
    store = encrypted(raw, ["address.city"], KEYS)
    await store.create(_person())
    assert (await store.write_path("p1", "address.city", "Tokyo")).address.city == "Tokyo"
    stored = await raw.read("p1")
    assert stored is not None and stored.address is not None
    assert stored.address.city != "Tokyo"
    assert await store.read_path("p1", "address.city") == "Tokyo"


def test_secured_needs_the_top_level_attribute_writable() -> None:
    db = persisty.connect("memory://")
    raw = db.store(Profile)
    raw.create(_person())
    store = secured(
        raw,
        Policy(read=None, create=None, update=None, delete=None, writable=["address"]),
        Principal("ann"),
    )
    assert store.write_path("p1", "address.city", "Kyoto").address.city == "Kyoto"  # type: ignore[union-attr]
    with pytest.raises(Forbidden) as e:
        store.write_path("p1", "extra.x", 5)
    assert e.value.field == "extra"
    with pytest.raises(Forbidden):
        store.patch("p1", {"history[0].city": "x"})
    results = store.edit_batch([Edit.patch("p1", {"/extra/x": 9})])
    assert results[0].code == "forbidden"
    got = raw.read("p1")
    assert got is not None and got.extra == {"x": 1} and got.history[0].city == "Kobe"


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=30))
def test_any_text_is_a_path_or_a_validation_error(text: str) -> None:
    try:
        p = parse_path(PROFILE, text)
    except ValidationError as e:
        assert e.field is not None
        return
    again = parse_path(PROFILE, p.text)  # the canonical text names the same path
    assert again.segments == p.segments


@settings(max_examples=200, deadline=None)
@given(st.text(min_size=0, max_size=8))
def test_any_dict_key_round_trips_as_a_pointer(key: str) -> None:
    pointer = "/extra/" + key.replace("~", "~0").replace("/", "~1")
    p = parse_path(PROFILE, pointer)
    assert p.segments == ("extra", key)
    assert parse_path(PROFILE, p.text).segments == ("extra", key)
    item = Profile(id="x", extra={key: 3})
    assert p.get(item) == 3
    assert p.replace(item, 4) == {key: 4}


@stored
class Bag:
    id: str
    extra: dict[str, str] = Attr(default_factory=dict)
    nums: dict[str, int] = Attr(default_factory=dict)


@pytest.mark.parametrize("url", ["memory://", "sqlite://"])
def test_dict_value_wildcards_and_pointer_paths_are_encrypted(url: str) -> None:
    db = persisty.connect(url)
    fields = ["extra.*", "/nums/a.b"]
    raw = db.store(sealed_model(Bag, fields))
    bags = encrypted(raw, fields, KEYS)
    b = bags.create(Bag(id="b", extra={"x": "secret", "y.z": "two"}, nums={"a.b": 5, "c": 6}))
    assert bags.read("b") == b
    stored_bag = raw.read("b")
    assert stored_bag is not None
    assert "secret" not in repr(stored_bag) and "'two'" not in repr(stored_bag)
    assert stored_bag.nums["c"] == 6 and stored_bag.nums["a.b"] != 5  # only the path named
    assert bags.write_path("b", "extra.new", "fresh").extra["new"] == "fresh"
    assert "fresh" not in repr(raw.read("b"))
    assert bags.read_path("b", "/nums/a.b") == 5
    moved = raw.read("b")
    assert moved is not None
    raw.write_path("b", "extra.x", moved.extra["y.z"])  # a value moved to another key
    with pytest.raises(persisty.errors.IntegrityError):
        bags.read("b")
    with pytest.raises(ValidationError):
        encrypted(db.store(Profile), ["address.*"], KEYS)  # not a dict
