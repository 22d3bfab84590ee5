"""Writes to several stores of one Redis database in one transaction (``db.commit``).

Under ``WATCH`` of every store's shadow hash (which holds each item's etag), the writes are
checked as the commit script would check them; then one ``MULTI``/``EXEC`` runs each store's
commit script. A write to any of those stores in between makes ``EXEC`` fail, and the
commit is checked again, so the scripts only ever apply what was checked: all or nothing.

The sync twin ``_commit_sync.py`` is generated from this file; edit this one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis.exceptions

from persisty.backends.redis._keys import translate
from persisty.errors import Conflict, PersistyError, ValidationError
from persisty.store import Insert, Remove, WriteOp

MAX_ATTEMPTS = 50


def _etag(shadow: bytes) -> bytes:
    c = shadow.index(b":")
    return shadow[c + 1 : c + 1 + int(shadow[:c])]


def _code(op: WriteOp, current: bytes | None) -> bytes:
    """What the commit script answers for ``op`` on an item whose etag is ``current``."""
    if isinstance(op, Insert):
        return b"exists" if current is not None else b"ok"
    if current is None:
        return b"missing"
    if op.expected is not None and current != op.expected.encode():
        return b"etag"
    return b"ok"


async def commit_stores(
    client: Any, groups: Sequence[tuple[Any, Sequence[WriteOp]]]
) -> list[list[PersistyError | None]]:
    """Each store's ops in one Redis transaction: all or nothing across the stores."""
    if len(groups) == 1:
        store, ops = groups[0]
        return [await store._commit(ops, True)]
    for store, _ in groups:
        if not store._ready:
            await store._prepare()
        if store.layout.unique or store.meta.expires is not None:
            raise ValidationError(
                f"{store.meta.name}: an atomic commit over several Redis "
                "stores takes stores without unique indexes or expiry",
                field="writes",
            )
    errors: list[list[PersistyError | None]] = [[None] * len(ops) for _, ops in groups]
    with translate():
        for _ in range(MAX_ATTEMPTS):
            async with client.pipeline(transaction=True) as pipe:
                await pipe.watch(*(store.layout.shadow for store, _ in groups))
                fills = []
                for n, (store, ops) in enumerate(groups):
                    raws = [store.layout.raw_key(op.key) for op in ops]
                    found = await pipe.hmget(store.layout.shadow, raws) if raws else []
                    state: dict[bytes, bytes | None] = {}
                    for raw, sh in zip(raws, found, strict=True):
                        state.setdefault(raw, None if sh is None else _etag(sh))
                    unknown = [r for r, tag in state.items() if tag == b""]
                    if unknown:  # etags a patch left out: the content hash, filled in first
                        names = [store.layout.item_key(r) for r in unknown]
                        await pipe.watch(*names)
                        args = store.layout.fill_args(unknown, await pipe.mget(names))
                        for i in range(1, len(args), 3):
                            state[args[i]] = args[i + 2]
                        fills.append((store, args))
                    for j, (op, raw) in enumerate(zip(ops, raws, strict=True)):
                        code = _code(op, state[raw])
                        if code != b"ok":
                            errors[n][j] = store.layout.errors([op], [code])[0]
                            await pipe.reset()
                            return errors
                        state[raw] = None if isinstance(op, Remove) else op.etag.encode()
                pipe.multi()
                for store, args in fills:
                    await store._fill_script(args=args, client=pipe)
                for store, ops in groups:
                    await store._commit_script(
                        args=store.layout.commit_args(ops, True), client=pipe
                    )
                try:
                    replies = await pipe.execute()
                except redis.exceptions.WatchError:
                    continue  # a store changed after it was checked: check again
            replies = replies[len(fills) :]
            for n, ((store, ops), codes) in enumerate(zip(groups, replies, strict=True)):
                errors[n] = store.layout.errors(ops, codes)
            return errors
    raise Conflict("too many concurrent changes; try again")
