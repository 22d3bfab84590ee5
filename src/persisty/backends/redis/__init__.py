"""The Redis backend: ``redis://host:port/db`` (redis-py with hiredis, Redis 7).

Example::

    import persisty
    db = persisty.connect("redis://127.0.0.1:6379/0", namespace="app")
    notes = db.store(Note)
"""

from persisty.backends.redis._async import AsyncRedisStore
from persisty.backends.redis._database_async import AsyncRedisDatabase
from persisty.backends.redis._database_sync import RedisDatabase
from persisty.backends.redis._sync import RedisStore

__all__ = ["AsyncRedisDatabase", "AsyncRedisStore", "RedisDatabase", "RedisStore"]
