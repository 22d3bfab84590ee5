"""The stored classes the conformance suite runs against; they cover every attribute kind,
a unique index, a composite key and an integer key."""

from __future__ import annotations

import dataclasses
import enum
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

from persisty.model import Attr, Index, stored


class Color(enum.Enum):
    """An enum attribute's values."""

    RED = "red"
    GREEN = "green"
    BLUE = "blue"


@stored(indexes=[Index("owner", "priority"), Index("code", unique=True), Index("score")])
class Item:
    """The main conformance model: one attribute of nearly every kind."""

    id: UUID = Attr(default_factory=uuid4)
    owner: str
    title: str = Attr(max_length=100)
    priority: int = 0
    score: float | None = None
    tags: list[str] = Attr(default_factory=list)
    body: str | None = None
    color: Color | None = None
    due: date | None = None
    active: bool = True
    code: str | None = None
    amount: Decimal | None = None
    # an explicit default tells type checkers these need not be passed
    created_at: datetime = Attr(generated="created", default=None)
    updated_at: datetime = Attr(generated="updated", default=None)


@stored(key=("owner", "slug"))
class Doc:
    """A composite key."""

    owner: str
    slug: str
    title: str = ""
    views: int = 0


@stored
class Counter:
    """A string key and a number: what concurrent increments fight over."""

    id: str
    value: int = 0


@stored
class Numbered:
    """An integer key."""

    id: int
    name: str = ""


@dataclasses.dataclass
class Address:
    """A nested value."""

    street: str
    city: str
    zip: str | None = None


@stored
class Profile:
    """Nested dataclasses, dicts, bytes and timestamps round-trip exactly."""

    id: str
    address: Address | None = None
    history: list[Address] = Attr(default_factory=list)
    extra: dict[str, int] = Attr(default_factory=dict)
    avatar: bytes | None = None
    seen: datetime | None = None


@stored
class Measure:
    """Hostile values: numbers, timestamps and a free-form nested document."""

    id: str
    value: float | None = None
    amount: Decimal | None = None
    at: datetime | None = None
    data: dict[str, Any] = Attr(default_factory=dict)
    serial: int | None = Attr(generated="sequence", default=None)


@stored
class Animal:
    """A stored base class."""

    id: str
    name: str = ""
    legs: int = Attr(ge=0, default=4)


@stored
class Dog(Animal):
    """Inherits a stored class, redeclares one of its attributes."""

    breed: str = ""
    name: str = Attr(max_length=20, default="dog")


class Stamped:
    """A plain base class: annotations and defaults only."""

    note: str = ""
    age: int | None = Attr(ge=0, default=None)


@dataclasses.dataclass
class Tagged:
    """A dataclass base."""

    tags: list[str] = dataclasses.field(default_factory=list)


@stored
class Pet(Tagged, Stamped):
    """Inherits a dataclass and a plain class."""

    id: str


@stored
class Tally:
    """Numbers that ``Increment`` adds to."""

    id: str
    hits: int = 0
    score: float = 0.0
    label: str = ""


LEASE_TTL = timedelta(hours=1)


@stored(ttl=LEASE_TTL, indexes=[Index("owner")])
class Lease:
    """Items that expire: ``expires_at`` defaults to write time + one hour."""

    id: str
    owner: str = ""
    note: str | None = None
    expires_at: datetime | None = Attr(expires=True, default=None)
    created_at: datetime = Attr(generated="created", default=None)


@dataclasses.dataclass
class Geo:
    """A nested value two levels down."""

    latitude: float
    longitude: float


@dataclasses.dataclass
class Spot:
    """A nested value with optional scalars of every comparable JSON type."""

    city: str
    country: str | None = None
    rank: int | None = None
    open: bool | None = None
    kind: Color | None = None
    geo: Geo | None = None


@stored
class Venue:
    """Filters on nested paths: ``spot.city``, ``visits[0].rank``, ``/extra/a.b``."""

    id: str
    name: str = ""
    spot: Spot | None = None
    visits: list[Spot] = Attr(default_factory=list)
    extra: dict[str, int] = Attr(default_factory=dict)
    labels: dict[str, str] = Attr(default_factory=dict)
