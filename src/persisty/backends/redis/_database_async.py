"""The Redis database (``redis://host:port/db``): the client, the stores it opens, the
multi-store commit, migrations and drops.

The sync twin ``_database_sync.py`` is generated from this file; edit this one.
"""

from __future__ import annotations

from typing import Any

from persisty.backends.redis._async import AsyncRedisStore
from persisty.backends.redis._clients import AsyncRedis
from persisty.backends.redis._commit_async import commit_stores
from persisty.backends.redis._keys import (
    base_name,
    load_secret,
    namespace_pattern,
    parse_url,
    translate,
)
from persisty.backends.redis._reads_async import CHUNK
from persisty.errors import PersistyError
from persisty.model import StoreMeta, meta_of
from persisty.store import AsyncDatabase, AsyncStore, AsyncStoreBase, WriteOp


class AsyncRedisDatabase(AsyncDatabase):
    """``redis://[user:password@]host:port/db[?prefix=persisty]`` (also ``rediss://``):
    stores on a Redis 7 server through redis-py (with hiredis when installed).

    Every key starts with ``prefix`` (default ``persisty``), then the namespace and the
    store name. The page-key secret is kept in Redis under ``<prefix>:secret`` unless one
    is given. Extra keyword options go to ``redis.asyncio.Redis.from_url``.

    Example::

        db = persisty.aio.connect("redis://127.0.0.1:6379/0", namespace="tenant1")
        notes = db.store(Note)
        await db.close()
    """

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        namespace: str | None = None,
        secret: bytes | str | None = None,
        prefix: str | None = None,
        **options: Any,
    ) -> None:
        self.redis_url, self.prefix = parse_url(url, prefix)
        super().__init__(url, namespace=namespace, secret=secret)
        options["decode_responses"] = False
        self.client: AsyncRedis = AsyncRedis.from_url(self.redis_url, **options)

    def _secret(self) -> bytes | None:
        return load_secret(self.redis_url, self.prefix)

    async def _commit_stores(
        self, groups: list[tuple[AsyncStoreBase[Any], list[WriteOp]]]
    ) -> list[list[PersistyError | None]]:
        return await commit_stores(self.client, groups)

    def _open(self, meta: StoreMeta) -> AsyncStore[Any]:
        return AsyncRedisStore(
            meta, self.pages, self.client, base_name(self.prefix, self.namespace, meta.name)
        )

    async def plan_migration(self) -> list[str]:
        """What :meth:`migrate` would do for the stores opened so far (nothing is changed):
        one ``REINDEX`` step per store whose items were indexed for other indexes.

        Example::

            db.store(Note)
            for step in await db.plan_migration():
                print(step)
        """
        steps: list[str] = []
        for store in self._stores.values():
            if not isinstance(store, AsyncRedisStore):
                continue
            layout = store.layout
            with translate():
                stored = await self.client.get(layout.version_key)
                count = int(await self.client.zcard(layout.keyset.zset))
            if stored != layout.signature and count:
                names = ", ".join(ix.name for ix in layout.indexes[1:]) or "no index"
                steps.append(f"REINDEX {store.meta.name} ({count} item(s); indexes: {names});")
        return steps

    async def migrate(self) -> list[str]:
        """Re-index the stored items of every store opened so far whose declared indexes
        changed; return what was done. (Stores also do this by themselves on first use.)

        Example::

            db.store(Note)
            print(await db.migrate())
        """
        done: list[str] = []
        for store in self._stores.values():
            if isinstance(store, AsyncRedisStore):
                store._unprepare()
                done += await store._prepare()
        return done

    async def drop(self, cls: type[Any] | None = None) -> None:
        """Delete every key of the store of ``cls`` (items, indexes, layout version,
        sequence counters); without ``cls``, every key of this database's namespace.

        Example::

            await db.drop(Note)   # one store
            await db.drop()       # the namespace
        """
        if cls is None:
            pattern = namespace_pattern(self.prefix, self.namespace)
            stores = list(self._stores.values())
        else:
            store = self.store(cls)
            pattern = base_name(self.prefix, self.namespace, store.meta.name).encode() + b"*"
            stores = [store]
        with translate():
            batch: list[bytes] = []
            async for name in self.client.scan_iter(match=pattern, count=CHUNK):
                batch.append(name)
                if len(batch) >= CHUNK:
                    await self.client.unlink(*batch)
                    batch = []
            if batch:
                await self.client.unlink(*batch)
        for s in stores:
            if isinstance(s, AsyncRedisStore):
                s._unprepare()

    async def footprint(self, cls: type[Any] | None = None) -> list[str]:
        """The keys of the store of ``cls`` (without ``cls``, of the namespace)."""
        if cls is None:
            pattern = namespace_pattern(self.prefix, self.namespace)
        else:
            name = meta_of(cls).name
            pattern = base_name(self.prefix, self.namespace, name).encode() + b"*"
        with translate():
            return sorted(
                [
                    k.decode(errors="replace")
                    async for k in self.client.scan_iter(match=pattern, count=CHUNK)
                ]
            )

    async def close(self) -> None:
        """Close the connection pool."""
        await self.client.connection_pool.disconnect()
