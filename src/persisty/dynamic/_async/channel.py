"""Telling other processes at once that the catalog changed, where the engine can: on
Redis, a pub/sub channel per namespace; on PostgreSQL, ``LISTEN``/``NOTIFY`` on a channel
per namespace (the SQL outbox of the events layer is a work queue: each change goes to one
claimant, so it cannot tell every process). Elsewhere (SQLite, MariaDB, DynamoDB, memory,
files), and whenever the channel fails, the polled change counter bounds the staleness."""

from __future__ import annotations

import contextlib
import hashlib
from typing import Any

from persisty.dynamic._time import close_pubsub_async
from persisty.store import AsyncDatabase

REDIS_SCHEMES = ("redis", "rediss")
POSTGRES_SCHEMES = ("postgresql", "postgres")


def channel_kind(db: AsyncDatabase) -> str:
    """How changes reach other processes on ``db``: ``"redis"`` (pub/sub),
    ``"postgresql"`` (``LISTEN``/``NOTIFY``) or ``"polled"`` (the change counter)."""
    scheme = db.url.split(":", 1)[0].split("+")[0]
    if scheme in REDIS_SCHEMES and getattr(db, "client", None) is not None:
        return "redis"
    if scheme in POSTGRES_SCHEMES and getattr(db, "sql_url", None) is not None:
        return "postgresql"
    return "polled"


class AsyncChangeChannel:
    """Publish "the catalog changed" and notice it without waiting (no background task:
    each look reads what has arrived, without blocking)."""

    def __init__(self, db: AsyncDatabase) -> None:
        self.kind = channel_kind(db)
        self.client: Any = getattr(db, "client", None) if self.kind == "redis" else None
        self.conninfo: str = db.sql_url.conninfo if self.kind == "postgresql" else ""  # type: ignore[attr-defined]
        prefix = getattr(db, "prefix", "persisty")
        self.name = f"{prefix}:dynamic-catalog:{db.namespace or '_'}"
        digest = hashlib.sha256(self.name.encode()).hexdigest()[:24]
        self.pg_name = f"persisty_catalog_{digest}"  # an identifier under 63 bytes
        self._subscription: Any = None
        self._conn: Any = None
        self._heard = False

    async def publish(self) -> None:
        """Tell every subscribed process (best effort: they poll anyway)."""
        # best effort: the counter still tells them within staleness
        with contextlib.suppress(Exception):
            if self.kind == "redis":
                await self.client.publish(self.name, b"changed")
            elif self.kind == "postgresql":
                conn = await self._listener()
                await conn.execute("SELECT pg_notify(%s, '')", (self.pg_name,))

    async def changed(self) -> bool:
        """Whether a change was announced since the last look; ``True`` on the first look
        (it subscribes) and after a broken channel came back, as changes made meanwhile
        were not announced (the counter tells)."""
        if self.kind == "redis":
            return await self._redis_changed()
        if self.kind == "postgresql":
            return await self._pg_changed()
        return False

    async def _redis_changed(self) -> bool:
        try:
            if self._subscription is None:
                sub = self.client.pubsub(ignore_subscribe_messages=True)
                await sub.subscribe(self.name)
                self._subscription = sub
                return True  # what changed before the subscription is not announced
            seen = False
            while await self._subscription.get_message(timeout=0) is not None:
                seen = True
            return seen
        except Exception:  # a broken channel: fall back to polling
            self._subscription = None
            return False

    async def _listener(self) -> Any:
        """The connection that listens (opened on the first use, in autocommit mode)."""
        if self._conn is None:
            import psycopg  # the PostgreSQL driver, present wherever a postgresql URL works

            conn = await psycopg.AsyncConnection.connect(self.conninfo, autocommit=True)
            conn.add_notify_handler(self._hear)
            await conn.execute(f'LISTEN "{self.pg_name}"')
            self._conn = conn
        return self._conn

    def _hear(self, notify: Any) -> None:
        self._heard = True  # a notification that arrived while the connection was in use

    async def _pg_changed(self) -> bool:
        try:
            if self._conn is None:
                await self._listener()
                return True  # what changed before listening is not announced
            pgconn = self._conn.pgconn
            pgconn.consume_input()  # what has arrived on the socket, without blocking
            while pgconn.notifies() is not None:
                self._heard = True
            seen, self._heard = self._heard, False
            return seen
        except Exception:  # a broken connection: poll, and listen again on the next look
            conn, self._conn = self._conn, None
            if conn is not None:
                with contextlib.suppress(Exception):
                    await conn.close()
            return False

    async def close(self) -> None:
        """Stop listening (the subscription's connection goes back to the pool)."""
        if self._subscription is not None:
            sub, self._subscription = self._subscription, None
            with contextlib.suppress(Exception):  # closing a broken connection
                await close_pubsub_async(sub)
        if self._conn is not None:
            conn, self._conn = self._conn, None
            with contextlib.suppress(Exception):
                await conn.close()
