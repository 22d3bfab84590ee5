"""What the three services share: opening the store, frozen mode, encryption, codecs and
the contract calls (``put``, ``Increment``) they are built on."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Self

from persisty import errors
from persisty._retry import attempts, lost_too_often
from persisty.errors import ConcurrentChange, Forbidden, Unavailable, ValidationError
from persisty.kv._codec import Codec, make_codec, make_keys
from persisty.kv._logic import check_namespace
from persisty.kv._open import frozen_missing, kv_connect_async, sqlite_has_table
from persisty.layers import encrypted
from persisty.query import F, Filter
from persisty.store import AsyncStore, Edit, EditResult


async def put_item(store: AsyncStore[Any], item: Any, *, if_match: str | None = None) -> Any:
    """Create or replace ``item`` (``store.put``)."""
    return await store.put(item, if_match=if_match)


async def put_items(
    store: AsyncStore[Any], items: Sequence[Any], limit: int | None = None, *, fresh: bool = False
) -> None:
    """Create or replace every item of ``items`` in one atomic batch (all or none); in
    atomic batches of ``limit`` items on engines whose transactions are bounded. ``fresh``:
    the caller saw none of the keys stored, so the first attempt creates them all unread."""
    if limit is not None and len(items) > limit:
        for start in range(0, len(items), limit):
            await put_items(store, items[start : start + limit], fresh=fresh)
        return
    if not items:
        return
    for attempt in attempts():
        # new items go as creates, which backends write in bulk; one created meanwhile
        # makes the batch fail as a conflict and the next attempt puts everything
        if attempt == 0 and fresh:
            edits = [Edit.create(i) for i in items]
        elif attempt == 0 and len(items) > 1:
            found = await store.read_batch([store.key_of(i) for i in items])
            edits = [
                Edit.create(i) if f is None else Edit.put(i)
                for i, f in zip(items, found, strict=True)
            ]
        else:
            edits = [Edit.put(i) for i in items]
        try:
            results = await store.edit_batch(edits, atomic=True)
        except Unavailable as e:
            if retryable(e):
                continue
            raise
        failed = [r for r in results if not r.ok and r.code != "aborted"]
        if not failed:
            return
        if failed[0].code == "conflict" and attempt == 0:
            continue
        raise_result(failed[0])
    raise lost_too_often()


def retryable(error: BaseException) -> bool:
    """A transient failure of a write that loses nothing when tried again: a collision the
    engine rolled back (a deadlock between two conditional writes)."""
    return isinstance(error, ConcurrentChange) or (
        isinstance(error, Unavailable) and "eadlock" in str(error)
    )


def raise_result(result: EditResult[Any]) -> None:
    """Raise the error an edit result reports."""
    by_code = {
        c.code: c
        for c in (
            errors.ValidationError,
            errors.NotFound,
            errors.Conflict,
            errors.PreconditionFailed,
            errors.Forbidden,
            errors.Unavailable,
            errors.IntegrityError,
        )
    }
    cls = by_code.get(result.code or "", errors.PersistyError)
    raise cls(result.message or result.code or "the write failed", field=result.field)


class AsyncService:
    """Opens one store of ``model`` for one namespace; subclasses add the methods."""

    model: type[Any]
    encrypted_fields: tuple[str, ...] = ("value",)

    def __init__(
        self,
        db_or_url: Any,
        namespace: str = "default",
        *,
        codec: Any = "json",
        keys: Any = None,
        frozen: bool = False,
    ) -> None:
        self.namespace = check_namespace(namespace)
        # stored with a leading '/': an empty namespace or key is no empty key part
        self.ns = "/" + namespace
        self.codec: Codec = make_codec(codec)
        self.key_ring = make_keys(keys)
        self.frozen = bool(frozen)
        self.db, self._owned = kv_connect_async(db_or_url)
        db: Any = self.db
        # a directory store makes its folder when opened: a frozen one looks first
        self._folder_existed = (
            hasattr(db, "root")
            and (db.root / (db.namespace or "_default") / self.model.__persisty__.name).is_dir()
        )
        self._raw: AsyncStore[Any] | None = None
        self._store: AsyncStore[Any] | None = None
        self._checked = not self.frozen
        self._absent = False
        # DynamoDB transactions hold at most 100 items: bigger batches go in atomic parts
        self.atomic_limit = 100 if type(self.db).__name__.endswith("DynamoDatabase") else None

    @property
    def raw(self) -> AsyncStore[Any]:
        """The store of the stored type (ciphertexts as stored)."""
        if self._raw is None:
            self._raw = self.db.store(self.model)
        return self._raw

    @property
    def store(self) -> AsyncStore[Any]:
        """The store the service reads and writes (through the encrypted layer with
        ``keys=``)."""
        if self._store is None:
            self._store = self.raw
            if self.key_ring is not None:
                self._store = encrypted(
                    self.raw,
                    fields=list(self.encrypted_fields),
                    keys=self.key_ring,
                    context="persisty.kv." + self.raw.meta.name,
                )
        return self._store

    @property
    def mine(self) -> Filter:
        """Every item of this namespace."""
        return F.ns == self.ns

    def _writable(self) -> None:
        if self.frozen:
            raise Forbidden(f"the store is frozen (read-only): namespace {self.namespace!r}")

    async def exists(self) -> bool:
        """Whether this service's table exists on the engine (checked without creating
        anything)."""
        db: Any = self.db
        if hasattr(db, "root"):  # a directory: its folder, or anything stored
            return self._folder_existed or (
                self._raw is not None and await self._raw.count(None) > 0
            )
        raw: Any = self.raw
        if hasattr(db, "sql_url"):  # SQL: the table, without creating it
            names = [n for n, s in db.schemas.items() if s.meta is raw.meta]
            if db.sql_url.path is not None:
                return bool(names) and sqlite_has_table(db.sql_url.path, names[0])
            if db.sql_url.memory:
                return False
            plan = await db.plan_migration()
            return not any(s.startswith("CREATE TABLE") and names and names[0] in s for s in plan)
        if hasattr(raw, "table") and hasattr(raw, "client"):  # DynamoDB
            try:
                await raw.client.call("describe_table", TableName=raw.table)
            except Exception as e:
                if "ResourceNotFound" in repr(e) or "ResourceNotFound" in str(
                    getattr(e, "response", "")
                ):
                    return False
                raise
            return True
        # engines where reading creates nothing (memory, Redis): anything stored at all
        return await self.raw.count(None) > 0

    async def check(self) -> None:
        """Raise ``Unavailable`` when the store is frozen and its table does not exist."""
        if self._checked:
            return
        if not await self.exists():
            raise frozen_missing(self.db.url, f"the {self.model.__persisty__.name} store")
        self._checked = True

    async def _ready(self) -> bool:
        """``False`` when nothing can be stored here (a frozen one-object store of which
        this part has no table): reads answer empty without touching the engine."""
        if not self._checked:
            await self.check()
        return not self._absent

    async def _distinct(self, attr: str, then: str) -> list[str]:
        """The distinct values of ``attr`` in this namespace (without their leading ``/``),
        in order: one query per value, each seeking past the last (a skip scan over the
        key ``(ns, attr, then)``)."""
        if not await self._ready():
            return []
        names: list[str] = []
        f: Filter = self.mine
        while True:
            page = await self.store.search(f, order=[+getattr(F, attr), +getattr(F, then)], limit=1)
            if not page.items:
                return names
            last = getattr(page.items[0], attr)
            names.append(last[1:])
            f = self.mine & (getattr(F, attr) > last)

    def _encode(self, value: Any) -> str:
        return self.codec.encode(value)

    def _decode(self, text: str | None) -> Any:
        if text is None:
            return None
        try:
            return self.codec.decode(text)
        except ValidationError:
            raise
        except Exception as e:
            raise ValidationError(
                f"a stored value cannot be decoded by the {self.codec.name} codec: {e}",
                field="value",
            ) from e

    async def close(self) -> None:
        """Close the database when the service opened it from a URL."""
        if self._owned:
            await self.db.close()

    async def __aenter__(self) -> Self:
        await self.check()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
