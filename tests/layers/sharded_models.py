"""The Person model of the sharding tests, the four ways it is sharded, and what the sync and
async tests share (the engines, the leaves to encrypt, the failure injection)."""

from __future__ import annotations

import dataclasses
import tempfile
from datetime import date
from typing import Any

import pytest
from tests.conftest import DYNAMODB_URL, MYSQL_URL, POSTGRES_URL, REDIS_URL

from persisty.model import Attr, stored
from persisty.store import Edit


@dataclasses.dataclass
class Geo:
    longitude: float
    latitude: float


@dataclasses.dataclass
class Location:
    city: str
    country: str
    geolocation: Geo | None = None


@dataclasses.dataclass
class Birth:
    hospital: str
    dob: date


@stored
class Person:
    id: str
    name: str = ""
    location: Location | None = None
    birth_details: Birth | None = None
    friends: list[str] = Attr(default_factory=list)
    locations: list[Location] = Attr(default_factory=list)
    counters: dict[str, int] = Attr(default_factory=dict)


FOUR_WAYS = {
    "birth_details": "person_birth",
    "location": "person_location",
    "location.geolocation": "person_geo",
    "locations[]": "person_locations",
}


def person(key: str = "p1") -> Person:
    return Person(
        id=key,
        name="Ann",
        location=Location("Osaka", "JP", Geo(135.5, 34.7)),
        birth_details=Birth("St Luke", date(1990, 1, 2)),
        friends=["bo", "cy"],
        locations=[Location("Kobe", "JP"), Location("Nara", "JP", Geo(1.0, 2.0))],
    )


DOB = date(1990, 1, 2)

ENGINE_URLS = {
    "memory": "memory://",
    "file": "file://",
    "sqlite": "sqlite://",
    "postgresql": POSTGRES_URL,
    "mariadb": MYSQL_URL,
    "redis": REDIS_URL,
    "dynamodb": DYNAMODB_URL or "dynamodb://",
}
URLS = list(ENGINE_URLS.values())
ENGINE_IDS = list(ENGINE_URLS)


def url_of(url: str) -> str:
    """``url``, with a fresh directory for the file engine."""
    return "file://" + tempfile.mkdtemp() if url == "file://" else url


# every leaf of the Person, and the plaintexts none of its rows may hold once they are sealed
LEAVES = [
    "name",
    "friends[]",
    "birth_details.hospital",
    "birth_details.dob",
    "location.city",
    "location.country",
    "location.geolocation.longitude",
    "location.geolocation.latitude",
    "locations[].city",
    "locations[].country",
    "locations[].geolocation.longitude",
    "locations[].geolocation.latitude",
]
PLAIN = [
    "Ann",
    "Osaka",
    "Kobe",
    "Nara",
    "St Luke",
    "1990-01-02",
    "135.5",
    "34.7",
    "'JP'",
    "'bo'",
    "Tokyo",
]


def flipped(envelope: str) -> str:
    """A ciphertext envelope with one character of its body changed."""
    return envelope[:-3] + ("A" if envelope[-3] != "A" else "B") + envelope[-2:]


def stale_child_deletes(monkeypatch: pytest.MonkeyPatch, layer: type[Any], path: str) -> None:
    """Make the sharded ``layer`` class's deletes of the rows at ``path`` conditional on an
    etag no row has: the engine refuses that one delete inside the commit that also deletes
    the parent and the other rows (a real failure on every engine, no engine code mocked)."""
    real = layer._deletes

    def deletes(self: Any, key: str, row_etag: str, tags: Any) -> list[tuple[Any, Edit]]:
        target = self.stores[path]
        return [
            (s, Edit.delete(e.key, if_match="not-the-row-etag") if s is target else e)
            for s, e in real(self, key, row_etag, tags)
        ]

    monkeypatch.setattr(layer, "_deletes", deletes)
