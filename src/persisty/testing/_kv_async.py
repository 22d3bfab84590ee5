# mypy: disable-error-code="index, arg-type, union-attr, misc"
"""The conformance suite of ``persisty.kv``: key/value pairs, time series and event
sequences, as tests, run against every backend (the sync twin ``_kv_sync.py`` is
generated from this file).

Subclass it and say how to open a database on your engine::

    class TestMine(AsyncKVConformance):
        async def open_database(self, namespace):
            return persisty.aio.connect("mine://…", namespace=namespace)
        def process_url(self):
            return "mine://…"     # None when other processes cannot reach the engine

Counts of the concurrency tests are class attributes (``incr_workers``,
``incr_processes``, ``incr_each``, ``crash_points``) so slow engines can run fewer.
"""

from __future__ import annotations

from persisty.testing._kv_events_async import AsyncKVEventTests
from persisty.testing._kv_pairs_async import AsyncKVPairTests
from persisty.testing._kv_series_async import AsyncKVSeriesTests


class AsyncKVConformance(AsyncKVPairTests, AsyncKVSeriesTests, AsyncKVEventTests):
    """``persisty.kv`` on one engine: key/value pairs, time series, event sequences and the
    one-object store. Subclasses implement :meth:`open_database`."""
