"""The Redis backend (``redis://host:port/db``) on redis-py's asyncio client.

The sync twin ``_sync.py`` is generated from this file by ``scripts/generate_sync.py``;
edit this file, never the twin.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

from persisty.backends.redis._clients import AsyncRedis
from persisty.backends.redis._keys import (
    translate,
)
from persisty.backends.redis._layout import Access, Layout, after_filter, as_bytes
from persisty.backends.redis._scripts import COMMIT, COUNT, EXPIRE
from persisty.errors import Conflict, PersistyError, PreconditionFailed
from persisty.model import StoreMeta
from persisty.query import (
    ALL,
    NONE,
    Filter,
    Sort,
    seek,
    sort_spec,
    validate_filter,
)
from persisty.store import (
    AsyncStoreBase,
    Key,
    Plan,
    Replace,
    WriteOp,
)

CHUNK = 1000
"""Items per MGET, per SCAN page and per commit script call of a non-atomic batch."""


class AsyncRedisStore(AsyncStoreBase[Any]):
    """A Store whose items are JSON values under one key each, with every declared index
    kept as a lexicographic sorted set that is written in the same Lua script as the item.

    Equality, ``in``, ranges, ``exists`` and ``startswith`` on indexed attributes (and on the
    key) are answered by ``ZRANGEBYLEX``; ordering by indexed attributes pages through the
    index; anything else is evaluated in Python (``explain()`` says which).

    Example::

        db = persisty.aio.connect("redis://127.0.0.1:6379/0", namespace="app")
        notes = db.store(Note)
        await notes.search(F.owner == "ann", order=[-F.priority], limit=20)
    """

    reclaims_natively = True  # SET … PXAT at each item's expiry
    checks_expected = True  # the commit script compares etags: writes need no read first
    finds_residual = True  # candidates stream from the index and are filtered as they come

    def __init__(self, meta: StoreMeta, pages: Any, client: AsyncRedis, base: str) -> None:
        super().__init__(meta, pages)
        self.client = client
        self.layout = Layout(meta, base)
        self._commit_script = client.register_script(COMMIT)
        self._count_script = client.register_script(COUNT)
        self._expire_script = client.register_script(EXPIRE)
        self._key_order = sort_spec(meta, None)
        key_attrs = meta.key_attrs
        self._plain_keys = len(key_attrs) == 1 and key_attrs[0].kind == "str"

    # ---- index versions -----------------------------------------------------------------

    async def _setup(self) -> list[str]:
        """When the declared indexes differ from those the stored items were indexed with,
        re-index every item (what ``db.migrate()`` reports)."""
        layout = self.layout
        with translate():
            stored = await self.client.get(layout.version_key)
            if stored == layout.signature:
                return []
            done = 0
            if await self.client.zcard(layout.keyset.zset):
                done = await self._reindex()
            await self.client.set(layout.version_key, layout.signature)
        if stored is None and not done:
            return []
        return [
            f"redis: re-indexed {done} {self.meta.name} item(s) for indexes "
            f"{', '.join(ix.name for ix in layout.indexes[1:]) or '(none)'}"
        ]

    async def _reindex(self) -> int:
        layout = self.layout
        lo = b"-"
        total = 0
        while True:
            with translate():
                page = as_bytes(
                    await self.client.zrangebylex(layout.keyset.zset, lo, b"+", 0, CHUNK)
                )
            if not page:
                return total
            lo = b"(" + page[-1]
            raws = [layout.raw_of(layout.keyset, m) for m in page]
            rows = await self._mget(raws)  # not _fetch: the store is being prepared
            ops: list[WriteOp] = []
            for row in rows:
                if row is not None:
                    item, tag = row
                    ops.append(Replace(self.meta.key_values(item), item, tag, tag))
            errors = await self._send(ops, False)
            clash = next(
                (
                    e
                    for e in errors
                    if isinstance(e, Conflict) and not isinstance(e, PreconditionFailed)
                ),
                None,
            )
            if clash is not None:
                raise Conflict(
                    f"cannot build the indexes of {self.meta.name}: {clash.message}",
                    field=clash.field,
                )
            total += len(ops)

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

    async def _next_sequence(self, attr: str) -> int:
        with translate():
            value = await self.client.incr(self.layout.b + b":q:" + attr.encode())
        return int(value)

    async def _skip_sequence(self, attr: str, by: int) -> None:
        with translate():
            await self.client.incrby(self.layout.b + b":q:" + attr.encode(), by)

    # ---- writes -------------------------------------------------------------------------

    async def _commit(self, ops: Sequence[WriteOp], atomic: bool) -> list[PersistyError | None]:
        if not self._ready:
            await self._prepare()
        return await self._send(ops, atomic)

    async def _send(self, ops: Sequence[WriteOp], atomic: bool) -> list[PersistyError | None]:
        """``_commit`` on a prepared store: the commit script, in chunks when not atomic."""
        if not ops:
            return []
        if atomic or len(ops) <= CHUNK:  # one script call: all or nothing when atomic
            with translate():
                codes = await self._commit_script(args=self.layout.commit_args(ops, atomic))
            return self.layout.errors(ops, codes)
        parts = [ops[i : i + CHUNK] for i in range(0, len(ops), CHUNK)]
        async with self.client.pipeline(transaction=False) as pipe:
            for part in parts:  # buffered: nothing is sent before execute()
                await self._commit_script(args=self.layout.commit_args(part, False), client=pipe)
            with translate():
                replies = await pipe.execute()
        errors: list[PersistyError | None] = []
        for part, codes in zip(parts, replies, strict=True):
            errors += self.layout.errors(part, codes)
        return errors

    # ---- search -------------------------------------------------------------------------

    def _plan(self, f: Filter, spec: Sort) -> Plan:
        acc = self.layout.access(f, spec)
        return Plan(
            acc.native,
            acc.residual,
            acc.order_native or (acc.kind == "keys"),
            "redis " + acc.describe(),
        )

    async def _find(
        self, f: Filter, spec: Sort, after: Sequence[Any] | None, limit: int | None
    ) -> list[Any]:
        return await self._run(f, spec, after, limit)

    async def _count(self, f: Filter) -> int:
        return await self._count_access(f, self.layout.access(f, self._key_order))

    async def _count_access(self, f: Filter, acc: Access) -> int:
        if not self._ready:
            await self._prepare()
        if f is not ALL and (acc.residual is not ALL or acc.kind == "scan"):
            return len(await self._run(f, self._key_order, None, None, acc))
        if acc.kind == "keys":
            if not acc.keys:
                return 0
            names = [self.layout.item_key(self.layout.raw_key(k)) for k in acc.keys]
            with translate():
                return int(await self.client.exists(*names))
        ix = acc.index or self.layout.keyset
        with translate():
            if self.meta.expires is None:
                if f is ALL:
                    return int(await self.client.zcard(ix.zset))
                if len(acc.ranges) == 1:
                    return int(await self.client.zlexcount(ix.zset, *acc.ranges[0]))
            args: list[bytes] = [self.layout.b, ix.zset]
            if f is not ALL:
                for lo, hi in acc.ranges:
                    args += [lo, hi]
            return int(await self._count_script(args=args))

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

    async def count(self, filter: Filter | None = None) -> int:
        f = validate_filter(filter, self.meta)
        # on the system clock, expired items are removed on the server (the count script
        # runs expire_due before ZCARD/ZLEXCOUNT, item keys carry PXAT): no expiry predicate
        # is needed, so a key range stays a sorted-set count instead of reading items
        if self.clock.now is not None:
            f = self._live(f)
        if f is NONE:
            return 0
        return await self._count_access(f, self.layout.access(f, self._key_order))

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
