"""The Database (async): a connection to one engine that hands out one Store per
``@stored`` class.

Edit this file; scripts/generate_sync.py writes its sync twin ``_sync/database.py``.
"""

from __future__ import annotations

import os
import re
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from persisty.errors import (
    PersistyError,
    ValidationError,
)
from persisty.model import StoreMeta, meta_of
from persisty.query import (
    PageKeys,
)
from persisty.store._async.base import AsyncStoreBase
from persisty.store._async.contract import AsyncStore
from persisty.store._commit_async import commit_edits, commit_one_store
from persisty.store._types import (
    Clock,
    Edit,
    EditResult,
    WriteOp,
)

if TYPE_CHECKING:
    from persisty.files import AsyncFileStore

T = TypeVar("T")


def _shape(meta: StoreMeta) -> dict[str, str]:
    """What a stored item is made of, attribute by attribute: ``str``, ``int | None``,
    ``list[str]``, ``str (key)`` …"""
    return {
        a.name: (f"list[{a.item_kind}]" if a.kind == "list" and a.item_kind else a.kind)
        + (" | None" if a.optional else "")
        + (" (key)" if a.name in meta.key.attrs else "")
        for a in meta.attrs
    }


def _check_same_shape(meta: StoreMeta, cls: type[Any], open_: Mapping[type[Any], Any]) -> None:
    """A store name is one shape in one database: another class of the same shape (a class
    declared again, as a notebook re-running a cell does) shares the store; a different one
    is refused, naming both classes and what differs."""
    for other_cls, store in open_.items():
        other = store.meta
        if other.name != meta.name or other_cls is cls:
            continue
        mine, theirs = _shape(meta), _shape(other)
        if mine == theirs and other.key.attrs == meta.key.attrs:
            continue  # the same shape: the same store
        differ = [
            f"{n}: {theirs.get(n, 'missing')} in {other_cls.__name__}, "
            f"{mine.get(n, 'missing')} in {cls.__name__}"
            for n in dict.fromkeys([*theirs, *mine])
            if theirs.get(n) != mine.get(n)
        ]
        if not differ:
            differ = [
                f"key {other.key.attrs} in {other_cls.__name__}, {meta.key.attrs} in {cls.__name__}"
            ]
        raise ValidationError(
            f"store {meta.name!r} is open in this database as {other_cls.__name__}; "
            f"{cls.__name__} has another shape ({'; '.join(differ)}): give one of them "
            "another name, or open the changed class with a new database object to migrate"
        )


_NAMESPACE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,39}$")


class AsyncDatabase(ABC):
    """A connection to one engine: hands out one Store per ``@stored`` class.

    ``namespace`` isolates the stores of one tenant from another's on the same engine.
    Page keys are signed with ``secret`` (else ``PERSISTY_SECRET``, else one the backend
    keeps, else a random one for this process). ``db.clock`` (a :class:`Clock`) is the time
    its stores write and expire items by.

    Example::

        db = persisty.aio.connect("memory://", namespace="tenant1")
        notes = db.store(Note)
    """

    def __init__(
        self, url: str, *, namespace: str | None = None, secret: bytes | str | None = None
    ) -> None:
        if namespace is not None and not _NAMESPACE.match(namespace):
            raise ValidationError(
                "a namespace is a letter then letters, digits or _ (at most 40)", field="namespace"
            )
        self.url = url
        self.namespace = namespace
        self.pages = PageKeys(
            secret or os.environ.get("PERSISTY_SECRET") or self._secret(),
            namespace=namespace,
            database=url,
        )
        self._stores: dict[type[Any], AsyncStore[Any]] = {}
        self.clock = Clock()
        """The clock every store of this database reads (timestamps, expiry); tests set
        ``db.clock.now`` (or pass ``connect(url, clock=Clock(...))``) to move time."""

    def _secret(self) -> bytes | None:
        """A secret the backend keeps for its database; ``None`` for a random one."""
        return None

    def store(self, cls: type[T]) -> AsyncStore[T]:
        """The Store for the ``@stored`` class ``cls`` (one per class per database)."""
        found = self._stores.get(cls)
        if found is None:
            meta = meta_of(cls)
            _check_same_shape(meta, cls, self._stores)
            found = self._stores[cls] = self._open(meta)
            if isinstance(found, AsyncStoreBase):
                found.clock = self.clock
                found.opened_by = self  # layers that write several stores commit through it
        return found

    def evolve(self, cls: type[T]) -> AsyncStore[T]:
        """The Store for ``cls``, a new version of a class already open under its store
        name (an attribute or an index added, a constraint relaxed): the earlier class is no
        longer served by this database, its items are read through ``cls``, and
        :meth:`migrate` brings the engine's schema up to it. What runtime-defined stores
        (``persisty.dynamic``) change their classes with; :meth:`store` refuses a second
        shape under one name.

        Example::

            @stored(name="note")
            class NoteV2:
                id: UUID = Attr(default_factory=uuid4)
                owner: str = ""
                title: str = ""
                priority: int = 0
                tags: list[str] = Attr(default_factory=list)
                body: str | None = None
                address: Address | None = None
                team: str = ""
                locked: bool = False
                created_at: datetime = Attr(generated="created", default=None)
                updated_at: datetime = Attr(generated="updated", default=None)
                pinned: bool = False

            db.store(Note)
            notes = db.evolve(NoteV2)
            await db.migrate()
        """
        name = meta_of(cls).name
        for other in [c for c, st in self._stores.items() if st.meta.name == name and c is not cls]:
            del self._stores[other]
        return self.store(cls)

    @abstractmethod
    def _open(self, meta: StoreMeta) -> AsyncStore[Any]:
        """A new Store for ``meta``."""

    def files(self, name: str = "files", **options: Any) -> AsyncFileStore:
        """A file store whose bytes are chunks in this database (256 KiB each by default);
        ``options`` are those of ``persisty.files.aio.chunked_files`` (``limits``,
        ``chunk_size``, ``secret`` …).

        Example::

            from persisty.files import Limits

            avatars = db.files("avatars", limits=Limits(max_size=5_000_000))
        """
        # here, not at the top: persisty.files builds on this module (a known cycle)
        from persisty.files import chunked_files_async

        return chunked_files_async(self, name, **options)

    async def commit(
        self, writes: Sequence[tuple[AsyncStore[Any], Edit]], *, atomic: bool = True
    ) -> list[EditResult[Any]]:
        """Apply edits to several stores of this database; one result per write, in order.

        ``atomic=True``: all or nothing, in one engine transaction (one SQL transaction,
        one DynamoDB ``TransactWriteItems``, one Redis transaction, one lock on memory and
        directory stores); the failing write has its code, the others ``aborted``. The
        stores must be this database's own (``db.store(cls)``), else ``ValidationError``.
        ``atomic=False``: each store's edits as one non-atomic ``edit_batch``.

        Example::

            results = await db.commit([(notes, Edit.create(Note(owner="ann", title="A"))),
                                       (db.store(Author), Edit.patch("a1", {"name": "U"}))])
            assert all(r.ok for r in results)
        """
        return await commit_edits(self, writes, atomic)

    async def _commit_stores(
        self, groups: list[tuple[AsyncStoreBase[Any], list[WriteOp]]]
    ) -> list[list[PersistyError | None]]:
        """Apply each store's ops, all or nothing across the stores (backends override)."""
        return await commit_one_store(groups, type(self).__name__)

    async def read_batch(self, reads: Sequence[tuple[AsyncStore[Any], str]]) -> list[Any]:
        """Read items of several stores at once; one item (or ``None``) per pair, in order.

        The database's own stores are read together where the engine can: one
        ``BatchGetItem`` over all their tables on DynamoDB (100 keys a request), one
        ``read_batch`` per store elsewhere. Any other store (a layer) is read through its
        own ``read_batch``. A key repeated is read once.

        Example::

            note, author = await db.read_batch([(notes, key), (db.store(Author), "a1")])
        """
        if isinstance(reads, str | bytes) or not isinstance(reads, Sequence):
            raise ValidationError("read_batch takes a list of (store, key) pairs", field="reads")
        groups: dict[int, tuple[AsyncStore[Any], list[int]]] = {}
        for i, pair in enumerate(reads):
            if not (
                isinstance(pair, tuple)
                and len(pair) == 2
                and isinstance(pair[1], str)
                and hasattr(pair[0], "read_batch")
            ):
                raise ValidationError(f"not a (store, key) pair: {pair!r}", field="reads")
            groups.setdefault(id(pair[0]), (pair[0], []))[1].append(i)
        result: list[Any] = [None] * len(reads)
        found = await self._read_stores(
            [(store, [reads[i][1] for i in idx]) for store, idx in groups.values()]
        )
        for (_, idx), items in zip(groups.values(), found, strict=True):
            for i, item in zip(idx, items, strict=True):
                result[i] = item
        return result

    async def _read_stores(
        self, groups: list[tuple[AsyncStore[Any], list[str]]]
    ) -> list[list[Any]]:
        """The items of each store's keys (backends that read several tables at once
        override this)."""
        return [await store.read_batch(keys) for store, keys in groups]

    async def migrate(self) -> list[str]:
        """Bring the engine's schema up to the stores opened so far; return what was done."""
        return []

    async def drop(self, cls: type[Any] | None = None) -> None:
        """Remove the store of ``cls`` and everything the engine keeps for it (items,
        indexes, sequence counters, tables, files, meta records); without ``cls``, every
        store of this database's namespace. A store used afterwards starts empty.

        Backends override this to leave nothing behind; this default deletes the items of
        the stores opened so far.

        Example::

            await db.drop(Note)   # one store
            await db.drop()       # the whole namespace
        """
        stores = [self.store(cls)] if cls is not None else list(self._stores.values())
        for store in stores:
            await store.delete_all(None)

    async def footprint(self, cls: type[Any] | None = None) -> list[str]:
        """What the engine holds for the store of ``cls`` (without ``cls``, for this
        database's namespace): the names of its keys, tables, files or records. Empty after
        :meth:`drop`; what the conformance suite checks drop with.

        Backends override this to look at the engine itself; this default names the stores
        opened so far that hold items.

        Example::

            await db.drop(Note)
            assert await db.footprint(Note) == []
        """
        stores = [self.store(cls)] if cls is not None else list(self._stores.values())
        found = []
        for store in stores:
            n = await store.count()
            if n:
                found.append(f"{store.meta.name}: {n} item(s)")
        return found

    async def close(self) -> None:  # noqa: B027 - nothing to release for most backends
        """Release connections; the database is unusable afterwards."""

    async def __aenter__(self) -> AsyncDatabase:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
