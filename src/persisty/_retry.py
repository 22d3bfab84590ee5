"""One rule for the optimistic read-check-write loops of the layers and services: read,
check, write with the etag read, and on a lost race (a concurrent write changed the item)
start again, at most ``persisty.store.MAX_RETRIES`` times, then give up with the same
``Conflict`` everywhere."""

from __future__ import annotations

from persisty.errors import Conflict
from persisty.store import MAX_RETRIES


def attempts() -> range:
    """The attempts of one optimistic loop (``for _ in attempts(): ...``)."""
    return range(MAX_RETRIES)


def lost_too_often() -> Conflict:
    """What a loop raises once every attempt lost to a concurrent write."""
    return Conflict("too many concurrent changes; try again")
