"""What ``@persisted`` knows about one decorated function (plain code): its key maker,
codec, store stashes, hit and miss counts, the works of its owners, and the miss path."""

from __future__ import annotations

import inspect
import threading
import typing
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from persisty.errors import PersistyError, ValidationError
from persisty.memo._async import AsyncFlights
from persisty.memo._async import compute_entry as compute_entry_async
from persisty.memo._keys import KeyMaker, stash_name
from persisty.memo._sync import Flights, compute_entry
from persisty.memo._work import CacheInfo, PersistedWork, SideWorks
from persisty.stash import MISSING, AsyncStash, AsyncStoreStash, Codec, Stash, StoreStash
from persisty.store import AsyncDatabase, Database

if TYPE_CHECKING:
    from persisty.memo._persisted import persisted


def _return_type(fn: Callable[..., Any]) -> Any:
    try:
        return typing.get_type_hints(fn).get("return", Any)
    except Exception:
        return Any


def _none() -> int:
    return 0


def _nothing() -> None:
    return None


class Spec:
    """What ``@persisted`` knows about one decorated function."""

    def __init__(self, fn: Callable[..., Any], options: persisted, *, method: bool) -> None:
        self.fn = fn
        self.options = options
        self.method = method
        self.is_async = inspect.iscoroutinefunction(fn)
        self.keys = KeyMaker(
            fn, skip_first=method, ignore=options.ignore, typed=options.typed, key=options.key
        )
        self.attr_name = options.name or f"_{fn.__name__}_pw"
        self.ttl = None if options.ttl is None else options.ttl.total_seconds()
        self.max_items = options.max_items
        self.mkdir = options.mkdir
        self.lease_seconds = options.lease_seconds
        self.counts = [0, 0]  # hits, misses (a list: the hot path adds to it cheaply)
        # the hits a plain function's own wrapper counted (``_fast``), and their reset
        self.fast_hits: Callable[[], int] = _none
        self.fast_reset: Callable[[], None] = _nothing
        self.works: weakref.WeakSet[PersistedWork] = weakref.WeakSet()
        self.side = SideWorks()
        self.flights: Any = AsyncFlights() if self.is_async else Flights()
        self._codec: Codec | None = None
        self._stashes: tuple[Any, Any] | None = None
        self._stash_lock = threading.Lock()

    # ---- storage -------------------------------------------------------------------------

    def codec(self) -> Codec:
        if self._codec is None:
            try:
                self._codec = Codec(self.options.codec, type=_return_type(self.fn))
            except TypeError:  # a return type msgspec cannot decode to
                self._codec = Codec(self.options.codec)
        return self._codec

    def _store_stashes(self, sync: bool) -> tuple[Any, Any] | None:
        store = self.options.store
        if store is None:
            return None
        if self._stashes is not None:
            return self._stashes
        with self._stash_lock:
            if self._stashes is None:
                stash_cls: Any = StoreStash if sync else AsyncStoreStash
                base: Any = Stash if sync else AsyncStash
                db: Any = Database if sync else AsyncDatabase
                if isinstance(store, base) and not isinstance(store, stash_cls):
                    self._stashes = (store, store)
                elif isinstance(store, base):
                    self._stashes = (store, stash_cls(store.database, store.name + "_l"))
                elif isinstance(store, (str, db)):
                    name = stash_name(self.fn)
                    value_type: Any = tuple.__class_getitem__((_return_type(self.fn), float | None))
                    try:
                        values = stash_cls(
                            store, name, codec=self.options.codec, value_type=value_type
                        )
                    except TypeError:
                        values = stash_cls(store, name, codec=self.options.codec)
                    database = values.database
                    self._stashes = (values, stash_cls(database, name + "_l"))
                else:
                    kind = "an async def" if not sync else "a plain function"
                    raise ValidationError(
                        f"store= of {kind} is a URL, a "
                        f"{'Database' if sync else 'AsyncDatabase'} or a "
                        f"{'Stash' if sync else 'AsyncStash'}",
                        field="store",
                    )
        return self._stashes

    def store_key(self, key: Any) -> str:
        """The key of a call in the store: in a stash the caller gave (which other functions
        may share) prefixed by the function's name."""
        text = self.keys.text(key)
        stashes = self._stashes
        if stashes is not None and not isinstance(stashes[0], (StoreStash, AsyncStoreStash)):
            return f"{stash_name(self.fn)}:{text}"
        return text

    def open_stash(self) -> tuple[Any, Any] | None:
        return self._store_stashes(True)

    def open_stash_async(self) -> tuple[Any, Any] | None:
        return self._store_stashes(False)

    def clear_store(self) -> None:
        stashes = self._stashes
        if stashes is None:
            return
        if self.is_async:
            return  # an async store is cleared with await wrapper.cache_clear_async()
        for stash in dict.fromkeys(stashes):
            stash.clear()

    # ---- the owner's work ------------------------------------------------------------------

    def new_work(self, owner: Any, keep_owner: bool = True) -> PersistedWork:
        opts = self.options
        path: Path | str = self.attr_name if opts.path is None else Path(opts.path)
        work = PersistedWork(
            path,
            owner if keep_owner else None,
            cache_global=opts.cache_global,
            transient=opts.transient,
            mkdir=opts.mkdir,
        )
        if not keep_owner:
            cls = owner if isinstance(owner, type) else type(owner)
            work.varname = f"_{cls.__module__}.{cls.__qualname__}_{path}_pwvinst"
        return self._adopt(work)

    def _adopt(self, work: PersistedWork) -> PersistedWork:
        work._spec = self
        work.worker = self.fn
        self.works.add(work)
        return work

    def work_for(self, owner: Any) -> PersistedWork:
        name = self.attr_name
        if isinstance(owner, type):
            found = owner.__dict__.get(name)
            if found is None:
                found = self.new_work(owner)
                setattr(owner, name, found)
        else:
            d = getattr(owner, "__dict__", None)
            if d is not None:
                found = d.get(name)
                if found is None:
                    found = d[name] = self.new_work(owner)
            else:
                try:
                    found = object.__getattribute__(owner, name)
                except AttributeError:
                    if any(name in getattr(c, "__slots__", ()) for c in type(owner).__mro__):
                        found = self.new_work(owner)
                        object.__setattr__(owner, name, found)
                    else:
                        return self.side.get(owner, lambda: self.new_work(owner, False))
        if not isinstance(found, PersistedWork):
            raise PersistyError(
                f"{type(owner).__name__}.{name} is not a PersistedWork "
                "(choose another name for @persisted)"
            )
        if found._spec is not self:
            found.owner = found.owner if found.owner is not None else owner
            self._adopt(found)
        return found

    # ---- the slow path (the wrappers inline the hit) -------------------------------------

    def _counted(self, work: PersistedWork, key: Any) -> Any:
        """The value in memory (counted as a hit) or ``MISSING`` (counted as a miss)."""
        value = work._memory_get(self, key)
        self.counts[1 if value is MISSING else 0] += 1
        return value

    def lookup_or_compute(
        self, work: PersistedWork, key: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        value = self._counted(work, key)
        if value is not MISSING:
            return value
        return self.flights.run(
            (id(work), key),
            lambda: work._memory_get(self, key),
            lambda: compute_entry(self, work, key, lambda: self.fn(*args, **kwargs)),
        )

    async def lookup_or_compute_async(
        self, work: PersistedWork, key: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        value = self._counted(work, key)
        if value is not MISSING:
            return value
        return await self.flights.run(
            (id(work), key),
            lambda: work._memory_get(self, key),
            lambda: compute_entry_async(self, work, key, lambda: self.fn(*args, **kwargs)),
        )

    def all_works(self) -> list[PersistedWork]:
        return list(self.works) + [w for w in self.side.works() if w not in self.works]

    def info(self) -> CacheInfo:
        size = sum(len(w._values) for w in self.all_works())
        hits = self.counts[0] + self.fast_hits()
        return CacheInfo(hits, self.counts[1], size, self.max_items)

    def clear(self) -> None:
        for work in self.all_works():
            work.clear()
        self.clear_store()
        self.counts[:] = [0, 0]
        self.fast_reset()
