"""Redis test fixtures: a database on the real server under a fresh namespace, dropped after."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
from tests.conftest import REDIS_URL

import persisty
import persisty.aio
from persisty.backends.redis import AsyncRedisDatabase, RedisDatabase


@pytest.fixture
def db() -> Iterator[RedisDatabase]:
    database = persisty.connect(REDIS_URL, namespace="t" + uuid.uuid4().hex[:12])
    assert isinstance(database, RedisDatabase)
    try:
        yield database
    finally:
        database.drop()
        database.close()


@pytest.fixture
async def adb() -> AsyncIterator[AsyncRedisDatabase]:
    database = persisty.aio.connect(REDIS_URL, namespace="t" + uuid.uuid4().hex[:12])
    assert isinstance(database, AsyncRedisDatabase)
    try:
        yield database
    finally:
        await database.drop()
        await database.close()
