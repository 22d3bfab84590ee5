"""Stored classes the serving tests use."""

from __future__ import annotations

import enum
from datetime import date, datetime
from uuid import UUID

from persisty import Attr, Index, stored
from persisty.layers import BelongsTo, HasOne


class Mood(enum.Enum):
    HAPPY = "happy"
    SAD = "sad"


@stored(indexes=[Index("owner")])
class Note:
    """A note someone wrote."""

    id: UUID = Attr(generated="uuid", default=None)  # what a bare UUID key gets
    owner: str = Attr(max_length=40)
    title: str = Attr(max_length=200)
    priority: int = 0
    tags: list[str] = Attr(default_factory=list)
    mood: Mood | None = None
    due: date | None = None
    created_at: datetime = Attr(generated="created", default=None)
    updated_at: datetime = Attr(generated="updated", default=None)


@stored(key=("owner", "slug"))
class Page:
    """A composite key."""

    owner: str = Attr(min_length=1, max_length=40)
    slug: str = Attr(min_length=1, max_length=40)
    body: str = ""
    views: int = Attr(default=0, ge=0, le=1_000_000)


@stored
class Author:
    """Someone who writes posts."""

    id: str = Attr(min_length=1, max_length=40)
    name: str = ""


@stored(indexes=[Index("author_id")])
class Post:
    """A post by an author."""

    id: UUID
    author_id: str
    text: str = ""
    stars: int = 0


@stored
class Person:
    """Has at most one profile; deleting a person with a profile is blocked."""

    id: str = Attr(min_length=1, max_length=40)
    profile = HasOne("Profile", "person_id", on_delete="block")


@stored(indexes=[Index("person_id")])
class Profile:
    """Belongs to a person."""

    id: str = Attr(min_length=1, max_length=40)
    person_id: str
    bio: str = ""
    person = BelongsTo(Person, "person_id")
