"""redis-py's client classes under the names the sync generation expects
(``AsyncRedis`` in ``_async.py`` becomes ``Redis`` in ``_sync.py``)."""

from redis import Redis
from redis.asyncio import Redis as AsyncRedis

__all__ = ["AsyncRedis", "Redis"]
