"""The stored types of the key/value, time-series and event-log services.

They are ordinary ``@stored`` classes kept in ordinary stores, so every backend, layer and
the serving layer apply to them. The namespace is an attribute of every item (part of its
key), never part of a table name, a SQL text or a key pattern: any string is a namespace.
"""

from __future__ import annotations

from datetime import datetime

from persisty.model import Attr, Index, stored

KV_STORE = "persisty_kv"
TS_STORE = "persisty_ts"
EVENTS_STORE = "persisty_events"
KV_COUNT_STORE = "persisty_kv_count"


@stored(key=("ns", "key"), name=KV_STORE)
class KVPair:
    """One key/value pair. ``value`` is the codec's text (or its ciphertext); an ``int``
    under the JSON codec without encryption is kept in ``num`` instead, so that ``incr`` is
    an atomic increment on the engine."""

    ns: str
    key: str
    value: str | None = None
    num: int | None = None
    expires: datetime | None = Attr(expires=True)


@stored(key=("ns", "key"), name=KV_STORE, indexes=[Index("ns", "expires")])
class IndexedKVPair:
    """:class:`KVPair` with an index on ``(ns, expires)``, kept where an index is cheap (SQL):
    ``len`` is then the count of the namespace's key range less an index range of pairs
    that expired but are still stored, never a test of every row's expiry."""

    ns: str
    key: str
    value: str | None = None
    num: int | None = None
    expires: datetime | None = Attr(expires=True)


@stored(key=("ns", "series", "t"), name=TS_STORE, clustered=True)
class Point:
    """One point of a time series: ``(t, value)`` with ``value`` as the codec's text."""

    ns: str
    series: str
    t: int
    value: str | None = None


@stored(key=("ns", "seq", "pos"), name=EVENTS_STORE, clustered=True)
class EventRow:
    """A row of an event sequence. ``pos`` is ``"h"`` for the sequence's head (its version,
    its last timestamp and its current state, a snapshot kept with every change) and
    ``"e"`` + the order-preserving text of ``t`` for an event (``data`` holds the changes)
    or a snapshot event left by ``prune`` (``snapshot`` true, ``data`` holds the state)."""

    ns: str
    seq: str
    pos: str
    t: int | None = None
    data: str = ""
    version: int = 0
    snapshot: bool = False


@stored(key="ns", name=KV_COUNT_STORE)
class KVCount:
    """How many pairs of namespace ``ns`` have no expiry, kept by every write that adds or
    removes one in the same atomic commit (SQL): ``len`` is this point read plus the live
    pairs with an expiry (an index range), never a count of the namespace."""

    ns: str
    n: int = 0
