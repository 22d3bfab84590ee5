"""DynamoDB's one-request writes (async): ``put`` as one PutItem, ``patch`` (``Increment``
included) as one UpdateItem, neither reading the item first.

A patch without a read cannot hash the whole item, so it leaves the stored etag out and
adds 1 to the item's version attribute (``~v``): a reader computes the etag from the
content (``etag(item)`` of the item returned or read is the same hash), and a conditional
write that finds no stored etag fills it in while the version is the one it read, then
tries again (``writes.py``).

The sync twin ``_sync/native.py`` is generated from this file by ``scripts/generate_sync.py``;
edit this file, never the twin.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from typing import Any

import botocore.exceptions

from persisty.backends.dynamodb._async.writes import AsyncDynamoWrites
from persisty.backends.dynamodb._clients import client_error, error_code
from persisty.backends.dynamodb._codec import ETAG, EXACT, PK, TTL, VERSION, order_bytes
from persisty.backends.dynamodb._plan import Expr, expression
from persisty.errors import Conflict, NotFound, PersistyError, PreconditionFailed
from persisty.model import StoreMeta, etag, is_path
from persisty.query import ALL, Filter, validate_filter
from persisty.store import (
    MAX_RETRIES,
    Increment,
    Key,
    ValueChecks,
    as_item,
    check_changes,
    prepare_create,
    prepare_update,
)

_ALWAYS_EXACT = frozenset({"str", "int", "bool", "datetime", "date", "uuid", "bytes"})
"""Kinds whose DynamoDB value always gives back the same Python value (no ``~x`` entry)."""


def value_checks(meta: StoreMeta) -> ValueChecks | None:
    """The per-attribute checks of patch values, or ``None`` when a value cannot be checked
    without the rest of the item (a ``__post_init__``, type hints that do not resolve);
    expiry is stamped here, so an expiring model is checked too."""
    cls = meta.cls
    if getattr(cls, "__post_init__", None) is not None or not dataclasses.is_dataclass(cls):
        return None
    try:
        return ValueChecks(meta, typing.get_type_hints(cls, include_extras=True))
    except Exception:  # unresolvable hints: the read path checks the whole item
        return None


class AsyncDynamoNative(AsyncDynamoWrites):
    """``put`` and ``patch`` of :class:`AsyncDynamoStore` in one request each."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        meta = self.meta
        self._checks = value_checks(meta)
        # create and update give the same item: put is one PutItem, no condition
        self._blind_put = all(
            a.updatable and a.creatable and a.generated in (None, "updated")
            for a in meta.attrs
            if a.name not in meta.key.attrs
        )

    async def put(self, item: Any, *, if_match: str | None = None) -> Any:
        if self._uniques or self.meta.sequence_attrs or (if_match and not self._blind_put):
            return await super().put(item, if_match=if_match)
        item = as_item(self.meta, item)
        await self._prepare()
        now = self.clock()
        new = prepare_create(self.meta, item, now)
        if self._blind_put:
            await self._put_blind(new, if_match, now)
            return new
        # a conditional create: one PutItem for a new (or expired) item; for an existing
        # one the failed condition returns it (ALL_OLD), so the update needs no GetItem
        ex = Expr()
        cond = f"attribute_not_exists({ex.name(PK)})"
        if self.meta.expires is not None:
            expired = expression(~self._live(ALL), self.meta, ex)
            cond = f"{cond} OR {expired}"
        row = self.codec.dump(new, etag(new))
        for _ in range(MAX_RETRIES):
            old = await self._put_if(row, cond, ex)
            if old is None:
                return new
            stored, tag = self.codec.load(old)
            updated = prepare_update(self.meta, item, stored, now)
            ex2 = Expr()
            if (
                await self._put_if(
                    self.codec.dump(updated, etag(updated)), self._unchanged(old, tag, ex2), ex2
                )
                is None
            ):
                return updated
            self.retries += 1  # changed or deleted since: create or update again
        raise Conflict("too many concurrent changes; try again")

    async def _put_blind(self, new: Any, if_match: str | None, now: Any) -> None:
        row = self.codec.dump(new, etag(new))
        if if_match is None:
            await self._call("put_item", {"TableName": self.table, "Item": row})
            return
        for _ in range(MAX_RETRIES):
            ex = Expr()
            live = self._live(ALL)
            cond = f"{ex.name(ETAG)} = {ex.value({'S': if_match})}"
            if live is not ALL:
                cond += f" AND {expression(live, self.meta, ex)}"
            old = await self._put_if(row, cond, ex)
            if old is None:
                return
            if self._expired(self.codec.load(old)[0], now):
                break
            if not await self._fill(old, if_match):
                break
        raise PreconditionFailed("the item has changed or does not exist (etag does not match)")

    def _unchanged(self, old: dict[str, Any], tag: str, ex: Expr) -> str:
        """The condition that the item is still ``old`` (its etag, or its version when a
        patch without a read left the etag out)."""
        if ETAG in old or VERSION not in old:
            return f"{ex.name(ETAG)} = {ex.value({'S': tag})}"
        version = ex.value(old[VERSION])
        return f"attribute_not_exists({ex.name(ETAG)}) AND {ex.name(VERSION)} = {version}"

    async def _put_if(self, row: dict[str, Any], cond: str, ex: Expr) -> dict[str, Any] | None:
        """PutItem of ``row`` under ``cond``: ``None`` when written, else the stored item
        (``{}`` when there is none)."""
        try:
            await self.client.call(
                "put_item",
                TableName=self.table,
                Item=row,
                ConditionExpression=cond,
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
                **ex.params(),
            )
        except botocore.exceptions.ClientError as e:
            if error_code(e) != "ConditionalCheckFailedException":
                raise client_error(e, self.meta.name) from e
            old: Any = e.response.get("Item")
            return dict(old or {})
        return None

    async def patch(
        self,
        key: str,
        changes: Mapping[str, Any],
        *,
        if_match: str | None = None,
        precondition: Filter | None = None,
    ) -> Any:
        checked = check_changes(self.meta, changes)
        k = self.meta.parse_key(key)
        request = self._update_request(k, checked, if_match, precondition)
        if request is not None:
            await self._prepare()
            try:
                out = await self.client.call("update_item", **request)
                return self.codec.load(out["Attributes"])[0]
            except botocore.exceptions.ClientError as e:
                code = error_code(e)
                if code == "ConditionalCheckFailedException" and not e.response.get("Item"):
                    raise NotFound(f"no {self.meta.name} with key {key!r}") from None
                if code not in ("ConditionalCheckFailedException", "ValidationException"):
                    raise client_error(e, self.meta.name) from e
                # expired, a failed condition, a value DynamoDB refused, or a number kept
                # exactly beside its value: the read path says which (or writes it)
        return await super().patch(key, changes, if_match=if_match, precondition=precondition)

    def _update_request(
        self,
        key: Key,
        changes: Mapping[str, Any],
        if_match: str | None,
        precondition: Filter | None,
    ) -> dict[str, Any] | None:
        """The UpdateItem of a patch (SET of the changed attributes, ADD of increments,
        ``attribute_exists`` of the key, the precondition and the etag as its condition),
        or ``None`` when it needs the stored item (unique values, paths, an increment of
        an indexed or non-integer attribute, an index partition value without its sort
        value, a value that does not pass its check: the read path names the error)."""
        checks = self._checks
        meta = self.meta
        if self._uniques or checks is None or any(map(is_path, changes)):
            return None
        now = self.clock()
        values: dict[str, Any] = {}
        ex = Expr()
        adds: list[str] = []
        for n, v in changes.items():
            if type(v) is Increment:
                if meta.by_name[n].kind != "int" or any(n in ix.attrs for ix in meta.indexes):
                    return None
                adds.append(f"{ex.name(n)} {ex.value({'N': str(v.by)})}")
                continue
            values[n] = v
        for a in meta.generated_or_fixed:
            if a.generated == "updated":
                values[a.name] = now
        if meta.ttl is not None and changes.get(meta.expires) is None:  # type: ignore[arg-type]
            values[meta.expires] = now + meta.ttl  # type: ignore[index]
        sets: list[str] = []
        removes: list[str] = []
        for n, v in values.items():
            got = checks.checked(n, v)
            if got is None:
                return None
            values[n] = got[0]
            if got[0] is None:
                removes.append(ex.name(n))
                continue
            try:
                av, exact = self.codec.attr_av(meta.by_name[n], got[0])
            except (PersistyError, TypeError, ValueError):
                return None
            if not exact:
                return None
            sets.append(f"{ex.name(n)} = {ex.value(av)}")
        if meta.expires in values:
            at = values[meta.expires]
            if at is None:
                removes.append(ex.name(TTL))
            else:
                sets.append(f"{ex.name(TTL)} = {ex.value(self.codec.ttl_av(at))}")
        for i, ix in enumerate(meta.indexes):
            second = ix.attrs[1] if len(ix.attrs) > 1 else None
            if ix.attrs[0] in values:
                first = values[ix.attrs[0]]
                if first is None:  # sparse: out of the index
                    removes += [ex.name(f"~p{i}"), *([ex.name(f"~s{i}")] if second else [])]
                    continue
                if second is not None and second not in values:
                    return None  # into the index with a sort key only the stored item has
                sets.append(f"{ex.name(f'~p{i}')} = {ex.value({'B': order_bytes(first)})}")
            if second is not None and second in values:
                # (harmless without the partition key: the item is then in no index)
                sort = order_bytes(values[second])
                sets.append(f"{ex.name(f'~s{i}')} = {ex.value({'B': sort})}")
        removes.append(ex.name(ETAG))  # the content hash, computed by readers
        adds.append(f"{ex.name(VERSION)} {ex.value({'N': '1'})}")
        conditions = [f"attribute_exists({ex.name(PK)})"]
        for n in [*values, *(n for n, v in changes.items() if type(v) is Increment)]:
            if meta.by_name[n].kind not in _ALWAYS_EXACT:  # no exact copy to keep in step
                conditions.append(f"attribute_not_exists({ex.name(EXACT)}.{ex.name(n)})")
        f = self._live(ALL if precondition is None else validate_filter(precondition, meta))
        if f is not ALL:
            text = expression(f, meta, ex)
            if text is None:
                return None
            conditions.append(text)
        if if_match is not None:
            conditions.append(f"{ex.name(ETAG)} = {ex.value({'S': if_match})}")
        update = ""
        if sets:
            update += "SET " + ", ".join(sets)
        if removes:
            update += " REMOVE " + ", ".join(removes)
        update += " ADD " + ", ".join(adds)
        return {
            "TableName": self.table,
            "Key": self.codec.key_av(key),
            "UpdateExpression": update,
            "ConditionExpression": " AND ".join(conditions),
            "ReturnValues": "ALL_NEW",
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            **ex.params(),
        }
