"""The Redis backend (``redis://host:port/db``) on redis-py's asyncio client.

The sync twin ``_sync.py`` is generated from this file by ``scripts/generate_sync.py``;
edit this file, never the twin.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from persisty.backends.redis._clients import AsyncRedis
from persisty.backends.redis._keys import CONNECTION_ERRORS, translate, unavailable
from persisty.backends.redis._layout import Access, Layout, Upsert, as_bytes
from persisty.backends.redis._patch_script import PATCH
from persisty.backends.redis._patching import PatchPlan, patch_args, patch_plan, value_checks
from persisty.backends.redis._reads_async import CHUNK, AsyncRedisReads
from persisty.backends.redis._scripts import COMMIT, COUNT, EXPIRE, FILL
from persisty.errors import Conflict, NotFound, PersistyError, PreconditionFailed
from persisty.model import StoreMeta, etag_of
from persisty.query import (
    ALL,
    NONE,
    Compare,
    Filter,
    Sort,
    sort_spec,
    validate_filter,
)
from persisty.store import (
    Plan,
    Replace,
    WriteOp,
    check_changes,
    prepare_create,
)


class AsyncRedisStore(AsyncRedisReads):
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
        self._fill_script = client.register_script(FILL)
        self._patch_script = client.register_script(PATCH)
        self._checks = value_checks(meta)
        self._patch_plans: dict[tuple[str, ...], PatchPlan | None] = {}
        # count(F.attr == "text") on an index: the ZLEXCOUNT arguments, by (attr, op, value)
        self._counts: dict[tuple[str, Any, str], tuple[bytes, bytes, bytes] | None] = {}
        self._key_order = sort_spec(meta, None)
        key_attrs = meta.key_attrs
        self._plain_keys = len(key_attrs) == 1 and key_attrs[0].kind == "str"
        # put() is one script call when nothing of a stored item is kept and creating sets
        # nothing an update would not (with expiry too: the script drops the due items
        # first, and sets or clears the new item's own expiry whichever it replaces)
        self._blind_put = (
            all(
                a.updatable and a.creatable and a.generated in (None, "updated")
                for a in meta.attrs
                if a.name not in meta.key.attrs
            )
            and not meta.sequence_attrs
        )

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
        """``_commit`` on a prepared store: the commit script, in chunks when not atomic;
        an op that met an etag a patch left out (``unknown``) goes again once it is filled."""
        codes = await self._codes(ops, atomic)
        for _ in range(3):
            todo = [i for i, c in enumerate(codes) if c == b"unknown"]
            if not todo:
                break
            raws = [self.layout.raw_key(ops[i].key) for i in todo]
            with translate():
                values = await self.client.mget([self.layout.item_key(r) for r in raws])
                await self._fill_script(args=self.layout.fill_args(raws, values))
            if atomic:  # nothing was written: the whole batch again
                codes = await self._codes(ops, atomic)
                continue
            again = await self._codes([ops[i] for i in todo], False)
            for i, c in zip(todo, again, strict=True):
                codes[i] = c
        return self.layout.errors(ops, codes)

    async def _codes(self, ops: Sequence[WriteOp], atomic: bool) -> list[Any]:
        """The commit script's code per op."""
        if not ops:
            return []
        if atomic or len(ops) <= CHUNK:  # one script call: all or nothing when atomic
            with translate():
                return list(await self._commit_script(args=self.layout.commit_args(ops, atomic)))
        parts = [ops[i : i + CHUNK] for i in range(0, len(ops), CHUNK)]
        async with self.client.pipeline(transaction=False) as pipe:
            for part in parts:  # buffered: nothing is sent before execute()
                await self._commit_script(args=self.layout.commit_args(part, False), client=pipe)
            with translate():
                replies = await pipe.execute()
        return [c for part in replies for c in part]

    async def put(self, item: Any, *, if_match: str | None = None) -> Any:
        if if_match is not None or not self._blind_put:
            return await super().put(item, if_match=if_match)
        # create and update give the same item: one commit script call creating or replacing
        new = prepare_create(self.meta, item, self.clock())
        raw = self.meta.encode(new)
        await self._commit_one(Upsert(self.meta.key_values(new), new, etag_of(raw), raw))
        return new

    async def patch(
        self,
        key: str,
        changes: Mapping[str, Any],
        *,
        if_match: str | None = None,
        precondition: Filter | None = None,
    ) -> Any:
        if (
            if_match is None
            and precondition is None
            and self._checks is not None
            and self._plain_keys
            and type(key) is str
            and key
            and type(changes) is dict
        ):
            names = tuple(changes)
            try:
                plan = self._patch_plans[names]
            except KeyError:
                plan = self._plan_patch(names, changes)
            if plan is not None:
                now = self.clock() if plan.stamps else None
                args = patch_args(self.layout, self._checks, plan, key.encode(), changes, now)
                if args is not None:  # (None: a value the read path checks and names)
                    if not self._ready:
                        await self._prepare()
                    with translate():
                        out = await self._patch_script(args=args)
                    if out[0] == b"ok":
                        new = self.meta.decode(out[1])
                        raw = self.meta.encode(new)
                        if raw != out[1]:  # the document held more than the model has
                            with translate():  # (say, a removed attribute): its etag, now
                                await self._fill_script(
                                    args=[
                                        self.layout.b,
                                        key.encode(),
                                        out[1],
                                        etag_of(raw).encode(),
                                    ]
                                )
                        return new
                    if out[0] == b"missing":
                        raise NotFound(f"no {self.meta.name} with key {key!r}")
        return await super().patch(key, changes, if_match=if_match, precondition=precondition)

    def _plan_patch(self, names: tuple[str, ...], changes: Mapping[str, Any]) -> PatchPlan | None:
        """The one-script plan of patches naming ``names`` (checked here: a wrong name
        raises), kept for the next patch of the same names."""
        checked = check_changes(self.meta, changes)
        plan = patch_plan(self.layout, tuple(checked)) if tuple(checked) == names else None
        if len(self._patch_plans) < 256:
            self._patch_plans[names] = plan
        return plan

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

    async def count(self, filter: Filter | None = None) -> int:
        if type(filter) is Compare and type(filter.value) is str and self.meta.expires is None:
            # the hot path: a string comparison seen before, one ZLEXCOUNT and nothing else
            found = self._counts.get((filter.attr, filter.op, filter.value))
            if found is not None and self._ready:
                try:
                    return int(await self.client.zlexcount(*found))
                except CONNECTION_ERRORS as e:
                    raise unavailable(e) from e
            return await self._count_str(filter)
        f = validate_filter(filter, self.meta)
        # on the system clock, expired items are removed on the server (the count script
        # runs expire_due before ZCARD/ZLEXCOUNT, item keys carry PXAT): no expiry predicate
        # is needed, so a key range stays a sorted-set count instead of reading items
        if self.clock.now is not None:
            f = self._live(f)
        if f is NONE:
            return 0
        return await self._count_access(f, self.layout.access(f, self._key_order))

    async def _count_str(self, filter: Compare) -> int:
        """``count`` of a string comparison, its ZLEXCOUNT kept when it is one."""
        f = validate_filter(filter, self.meta)
        acc = self.layout.access(f, self._key_order)
        if (
            f == filter
            and acc.kind == "index"
            and acc.residual is ALL
            and acc.index is not None
            and len(acc.ranges) == 1
        ):
            if len(self._counts) >= 1024:
                self._counts.clear()
            self._counts[(filter.attr, filter.op, filter.value)] = (acc.index.zset, *acc.ranges[0])
        return await self._count_access(f, acc)
