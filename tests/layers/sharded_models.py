"""The Person model of the sharding tests, and the four ways it is sharded."""

from __future__ import annotations

import dataclasses
from datetime import date

from persisty.model import Attr, stored


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
