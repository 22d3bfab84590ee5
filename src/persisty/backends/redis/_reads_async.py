"""The read side of the Redis store (async): items by key (GET, MGET), the searches that
run on the index sorted sets (``ZRANGEBYLEX`` ranges, paged streams in index order, SCAN
when nothing is indexed) and the one-round-trip ``read`` and ``read_batch``.
:class:`AsyncRedisStore` (``_async.py``) builds on it with the writes and the planning.

The sync twin ``_reads_sync.py`` is generated from this file; edit this one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

from persisty.backends.redis._clients import AsyncRedis
from persisty.backends.redis._keys import translate
from persisty.backends.redis._layout import Access, Layout, after_filter, as_bytes
from persisty.query import ALL, Filter, Sort, seek
from persisty.store import AsyncStoreBase, Key

CHUNK = 1000
"""Items per MGET, per SCAN page and per commit script call of a non-atomic batch."""


class AsyncRedisReads(AsyncStoreBase[Any]):
    """Reads and searches of :class:`AsyncRedisStore` (which sets these attributes)."""

    client: AsyncRedis
    layout: Layout
    _expire_script: Any
    _plain_keys: bool

    # ---- reads ------------------------------------------------------------------------

    async def _get(self, key: Key) -> tuple[Any, str] | None:
        if not self._ready:
            await self._prepare()
        with translate():
            data = await self.client.get(self.layout.item_key(self.layout.raw_key(key)))
        return self.layout.load(data)

    async def _get_many(self, keys: Sequence[Key]) -> list[tuple[Any, str] | None]:
        return await self._fetch([self.layout.raw_key(k) for k in keys])

    async def _fetch(self, raws: Sequence[bytes]) -> list[tuple[Any, str] | None]:
        """Items by raw key strings, ``None`` where missing (MGET, pipelined in chunks)."""
        if not self._ready:
            await self._prepare()
        return await self._mget(raws)

    async def _mget(self, raws: Sequence[bytes]) -> list[tuple[Any, str] | None]:
        if not raws:
            return []
        names = [self.layout.item_key(r) for r in raws]
        with translate():
            if len(names) <= CHUNK:
                values = await self.client.mget(names)
            else:
                async with self.client.pipeline(transaction=False) as pipe:
                    for start in range(0, len(names), CHUNK):
                        pipe.mget(names[start : start + CHUNK])
                    values = [v for part in await pipe.execute() for v in part]
        load = self.layout.load
        return [load(v) for v in values]

    # ---- search -------------------------------------------------------------------------

    async def _run(
        self,
        f: Filter,
        spec: Sort,
        after: Sequence[Any] | None,
        limit: int | None,
        acc: Access | None = None,
    ) -> list[Any]:
        """Items matching the validated filter ``f`` in ``spec`` order after ``after``."""
        if not self._ready:
            await self._prepare()
        if acc is None:
            acc = self.layout.access(f, spec)
        keep = self.layout.predicate(f)
        if self.meta.expires is not None and acc.kind != "keys":
            with translate():
                await self._expire_script(args=[self.layout.b])
        if acc.kind == "keys":
            rows = await self._get_many(acc.keys)
            return seek([r[0] for r in rows if r is not None and keep(r[0])], spec, after, limit)
        if acc.kind == "scan":
            items = [i async for i in self._scan() if keep(i)]
            return seek(items, spec, after, limit)
        if acc.stream:
            return await self._stream(acc, keep, spec, after, limit)
        members = await self._members(acc)
        assert acc.index is not None
        if acc.sortable:
            ordered = self.layout.sort_members(acc.index, members, spec, after)
            result: list[Any] = []
            step = CHUNK if limit is None else max(limit + 1, 50)
            for start in range(0, len(ordered), step):
                raws = [self.layout.raw_of(acc.index, m) for m in ordered[start : start + step]]
                rows = await self._fetch(raws)
                result += [r[0] for r in rows if r is not None and keep(r[0])]
                if limit is not None and len(result) >= limit:
                    break
            return seek(result, spec, after, limit)
        raws = [self.layout.raw_of(acc.index, m) for m in members]
        rows = await self._fetch(raws)
        return seek([r[0] for r in rows if r is not None and keep(r[0])], spec, after, limit)

    async def _members(self, acc: Access) -> list[bytes]:
        """Every member in the access's ranges (without duplicates)."""
        assert acc.index is not None
        zset = acc.index.zset
        with translate():
            if len(acc.ranges) == 1:
                lo, hi = acc.ranges[0]
                return as_bytes(await self.client.zrangebylex(zset, lo, hi))
            async with self.client.pipeline(transaction=False) as pipe:
                for lo, hi in acc.ranges:
                    pipe.zrangebylex(zset, lo, hi)
                parts = await pipe.execute()
        return list(dict.fromkeys(m for part in parts for m in part))

    async def _stream(
        self, acc: Access, keep: Any, spec: Sort, after: Sequence[Any] | None, limit: int | None
    ) -> list[Any]:
        """Page through one index range in its order; ties are sorted per complete group."""
        assert acc.index is not None
        ix = acc.index
        lo, hi = self.layout.start(acc, spec, after, *acc.ranges[0])
        if limit is None:
            size = CHUNK
        elif acc.residual is ALL:  # every entry is a hit: the page plus a few for ties
            size = min(CHUNK, limit + 8)
        else:
            size = min(CHUNK, max(2 * (limit + 1), 32))
        result: list[Any] = []
        pending: list[bytes] = []
        beyond = after_filter(spec, after)
        while True:
            with translate():
                if acc.desc:
                    page = as_bytes(await self.client.zrevrangebylex(ix.zset, hi, lo, 0, size))
                else:
                    page = as_bytes(await self.client.zrangebylex(ix.zset, lo, hi, 0, size))
            done = len(page) < size
            if page:
                if acc.desc:
                    hi = b"(" + page[-1]
                else:
                    lo = b"(" + page[-1]
            pending += page
            if done:
                ready, pending = pending, []
            else:
                last = self.layout.group_of(acc, pending[-1])
                cut = len(pending) - 1
                while (
                    cut > 0
                    and pending[cut - 1].startswith(last)
                    and (self.layout.group_of(acc, pending[cut - 1]) == last)
                ):
                    cut -= 1
                ready, pending = pending[:cut], pending[cut:]
            batches = [ready]
            if limit is not None and acc.residual is ALL:
                # every entry is a hit: fetch the groups the page needs, the rest if short
                need = limit - len(result)
                if after is not None and not result:  # the cursor's own group comes first
                    need += len(self.layout.split_groups(acc, ready, 1)[0])
                batches = self.layout.split_groups(acc, ready, need)
            for batch in batches:
                if not batch:
                    continue
                rows = await self._fetch([self.layout.raw_of(ix, m) for m in batch])
                items = [r[0] for r in rows if r is not None and keep(r[0]) and beyond(r[0])]
                result += seek(items, spec, None, None)
                if limit is not None and len(result) >= limit:
                    return result[:limit]
            if done:
                return result
            size = min(CHUNK, size * 2)

    async def _scan(self) -> AsyncIterator[Any]:
        """Every item of the store: SCAN over its item keys in pages, MGET per page."""
        pattern = _glob_escape(self.layout.item_prefix) + b"*"
        seen: set[bytes] = set()
        cursor: int = 0
        while True:
            with translate():
                cursor, found = await self.client.scan(cursor, match=pattern, count=CHUNK)
            names = [n for n in as_bytes(found) if n not in seen]
            seen.update(names)
            if names:
                with translate():
                    values = await self.client.mget(names)
                for v in values:
                    row = self.layout.load(v)
                    if row is not None:
                        yield row[0]
            if cursor == 0:
                return

    # ---- one round trip where the contract allows it ----------------------------------

    async def read(self, key: str) -> Any:
        if not self._ready:
            await self._prepare()
        if self._plain_keys and isinstance(key, str) and key and self.meta.expires is None:
            with translate():
                data = await self.client.get(self.layout.item_prefix + key.encode())
            row = self.layout.load(data)
            return None if row is None else row[0]
        return await super().read(key)

    async def read_batch(self, keys: Sequence[str]) -> list[Any]:
        if (
            self._plain_keys
            and self.meta.expires is None
            and isinstance(keys, list | tuple)
            and all(isinstance(k, str) and k for k in keys)
        ):
            rows = await self._fetch([k.encode() for k in keys])
            return [None if r is None else r[0] for r in rows]
        return await super().read_batch(keys)


def _glob_escape(raw: bytes) -> bytes:
    out = bytearray()
    for b in raw:
        if b in b"*?[]\\":
            out += b"\\"
        out.append(b)
    return bytes(out)
