"""The SQL backend, async; the sync twins in ``persisty.backends.sql._sync`` are generated."""
