"""``@persisted``, ``PersistedWork`` and ``PersistableContainer``: method-result caching
with the names and meanings of zensols.persist, where arguments are part of the key, ``None``
is a value, a failing worker caches nothing, files are written atomically and each key is
computed once across threads, tasks and (with ``store=``) processes."""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import functools
import inspect
import os
import re
import threading
import time
import typing
import uuid
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, NamedTuple

from persisty.errors import PersistyError, ValidationError
from persisty.memo._async import AsyncFlights
from persisty.memo._async import compute_entry as compute_entry_async
from persisty.memo._keys import KeyMaker, stash_name
from persisty.memo._sync import Flights, compute_entry
from persisty.stash import MISSING, AsyncStash, AsyncStoreStash, Codec, Stash, StoreStash
from persisty.store import AsyncDatabase, Database

_GLOBALS: dict[str, dict[Any, Any]] = {}
_GLOBALS_LOCK = threading.Lock()
_NORMALIZE = re.compile(r"""[ \\\[\]()/<>{}:;_`'"!@#$%^&*,+=.-]+""")


class CacheInfo(NamedTuple):
    """What ``wrapper.cache_info()`` reports: lookups answered from memory (``hits``), the
    others (``misses``), entries held in memory now (``size``) and the bound (``maxsize``)."""

    hits: int
    misses: int
    size: int
    maxsize: int | None


def _normalize(text: str) -> str:
    name = _NORMALIZE.sub("_", text.lower())
    return name.strip("_") or "_"


class PersistedWork:
    """The cached result(s) of one method on one owner (zensols' ``PersistedWork``): kept
    on the owner, optionally shared by every instance of its class (``cache_global``) and,
    when ``path`` is a :class:`~pathlib.Path`, in a file there (a method with arguments:
    a directory with one file per argument key). A ``str`` path keeps results in memory.

    Made in ``__init__`` and named by ``@persisted``, it works as in zensols::

        class Report:
            def __init__(self):
                self._rows = PersistedWork(Path("rows.json"), self, mkdir=True)

            @property
            @persisted("_rows")
            def rows(self) -> list[int]:
                return expensive()

        r = Report(); r.rows; r._rows.clear(); r._rows.set([1]); r._rows.is_set()
    """

    def __init__(
        self,
        path: Path | str,
        owner: Any,
        cache_global: bool = False,
        transient: bool = False,
        initial_value: Any = MISSING,
        mkdir: bool = False,
    ) -> None:
        self.owner = owner
        self.cache_global = cache_global
        self.transient = transient
        self.mkdir = mkdir
        self.worker: Callable[..., Any] | None = None
        if isinstance(path, Path):
            self.path = path
            self.use_disk = True
            fname = _normalize(str(path.absolute()))
        else:
            self.path = Path(str(path))
            self.use_disk = False
            fname = str(path)
        cls = owner if isinstance(owner, type) else type(owner)
        self.varname = f"_{cls.__module__}.{cls.__qualname__}_{fname}_pwvinst"
        self._values: dict[Any, Any] = {}
        self._deadlines: dict[Any, float] = {}
        self._spec: _Spec | None = None
        if initial_value is not MISSING:
            self.set(initial_value)

    # ---- zensols' API --------------------------------------------------------------------

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """The cached value, computing it with ``worker`` when there is none."""
        spec = self._spec or self._own_spec()
        if spec.is_async:
            raise TypeError("an async persisted method is awaited through its wrapper")
        owner_args = (self.owner, *args) if spec.method else args
        key = spec.keys.key(owner_args, kwargs)
        return spec.lookup_or_compute(self, key, owner_args, kwargs)

    def _own_spec(self) -> _Spec:
        if self.worker is None:
            raise PersistyError(f"{self.varname}: no worker to compute the value")
        return _Spec(self.worker, persisted(self.varname), method=False)

    def set(self, value: Any, *args: Any, **kwargs: Any) -> None:
        """Set the cached value (of the call with ``args``) as if it had been computed."""
        spec = self._spec
        key: Any = ()
        if spec is not None and (args or kwargs):
            key = spec.keys.key(((self.owner,) if spec.method else ()) + args, kwargs)
        self._values[key] = value
        self._deadlines.pop(key, None)
        if self.cache_global:
            with _GLOBALS_LOCK:
                _GLOBALS.setdefault(self.varname, {}).setdefault(key, value)

    def is_set(self) -> bool:
        """Whether a value is cached in memory (globally, when ``cache_global``)."""
        if self.cache_global:
            return bool(_GLOBALS.get(self.varname))
        return bool(self._values)

    def clear_global(self) -> None:
        """Forget only the values shared by the class (``cache_global``)."""
        with _GLOBALS_LOCK:
            _GLOBALS.pop(self.varname, None)

    def clear(self) -> None:
        """Forget every value: in memory, globally, in the file(s) and in the store."""
        self._values.clear()
        self._deadlines.clear()
        self.clear_global()
        if self.use_disk:
            if self.path.is_file():
                self.path.unlink(missing_ok=True)
            elif self.path.is_dir() and self._spec is not None and self._spec.keys.has_args:
                for file in self.path.glob("*.dat"):
                    file.unlink(missing_ok=True)
        if self._spec is not None:
            self._spec.clear_store()

    def __getstate__(self) -> dict[str, Any]:
        # the owner and worker are not pickled (the container sets the owner back); a
        # transient work forgets its values, so they are computed again after unpickling
        state = copy.copy(self.__dict__)
        state["owner"] = None
        state["worker"] = None
        state["_spec"] = None
        if self.transient:
            state["_values"] = {}
            state["_deadlines"] = {}
        else:
            state["_values"] = dict(self._values)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    def __repr__(self) -> str:
        return self.varname

    # ---- the tiers (used by the flows) ---------------------------------------------------

    def _memory_get(self, spec: _Spec, key: Any) -> Any:
        value = self._values.get(key, MISSING)
        if value is not MISSING:
            if spec.ttl is not None and self._deadlines.get(key, 0.0) <= time.monotonic():
                self._values.pop(key, None)
                return MISSING
            if spec.max_items is not None and isinstance(self._values, OrderedDict):
                self._values.move_to_end(key)
            return value
        if self.cache_global:
            found = _GLOBALS.get(self.varname)
            if found is not None and key in found:
                return found[key]
        return MISSING

    def _memory_set(self, spec: _Spec, key: Any, value: Any) -> None:
        if spec.max_items is not None:
            if not isinstance(self._values, OrderedDict):
                self._values = OrderedDict(self._values)
            self._values[key] = value
            self._values.move_to_end(key)
            while len(self._values) > spec.max_items:
                old, _ = self._values.popitem(last=False)
                self._deadlines.pop(old, None)
        else:
            self._values[key] = value
        if spec.ttl is not None:
            self._deadlines[key] = time.monotonic() + spec.ttl
        if self.cache_global:
            with _GLOBALS_LOCK:
                _GLOBALS.setdefault(self.varname, {}).setdefault(key, value)

    def _file(self, spec: _Spec, key: Any) -> Path:
        if not spec.keys.has_args:
            return self.path
        return self.path / f"{spec.keys.text(key)}.dat"

    def _file_get(self, spec: _Spec, key: Any) -> Any:
        if not self.use_disk:
            return MISSING
        file = self._file(spec, key)
        try:
            data = file.read_bytes()
            if spec.ttl is not None and file.stat().st_mtime + spec.ttl <= time.time():
                return MISSING
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return MISSING
        if not data:
            return MISSING  # a zero-byte file an older, non-atomic writer left behind
        return spec.codec().decode(data)

    def _file_set(self, spec: _Spec, key: Any, value: Any) -> None:
        if not self.use_disk:
            return
        data = spec.codec().encode(value)  # an unencodable value writes nothing
        file = self._file(spec, key)
        if self.mkdir or spec.mkdir:
            file.parent.mkdir(parents=True, exist_ok=True)
        elif spec.keys.has_args and self.path.parent.is_dir():
            self.path.mkdir(exist_ok=True)
        if not file.parent.is_dir():
            raise PersistyError(
                f"parent directory does not exist: {file.parent} (mkdir=True creates it)"
            )
        tmp = file.parent / f".{file.name}.{uuid.uuid4().hex}.tmp"
        try:
            with open(tmp, "xb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, file)
        finally:
            tmp.unlink(missing_ok=True)


class _SideWorks:
    """Works of owners without a ``__dict__`` (slotted, frozen): by identity with a weak
    reference where the owner allows one, else by the owner's field values (so equal
    frozen instances share results); never a strong reference to the owner."""

    def __init__(self, limit: int = 1024) -> None:
        self._lock = threading.Lock()
        self._by_id: dict[int, tuple[weakref.ref[Any], PersistedWork]] = {}
        self._by_value: OrderedDict[Any, PersistedWork] = OrderedDict()
        self.limit = limit

    def get(self, owner: Any, make: Callable[[], PersistedWork]) -> PersistedWork:
        entry = self._by_id.get(id(owner))
        if entry is not None and entry[0]() is owner:
            return entry[1]
        try:
            ref = weakref.ref(owner, self._dropper(id(owner)))
        except TypeError:
            return self._by_owner_value(owner, make)
        with self._lock:
            work = make()
            self._by_id[id(owner)] = (ref, work)
            return work

    def _dropper(self, ident: int) -> Callable[[weakref.ref[Any]], None]:
        def drop(ref: weakref.ref[Any]) -> None:
            with self._lock:
                entry = self._by_id.get(ident)
                if entry is not None and entry[0] is ref:
                    del self._by_id[ident]

        return drop

    def _by_owner_value(self, owner: Any, make: Callable[[], PersistedWork]) -> PersistedWork:
        if dataclasses.is_dataclass(owner):
            values: tuple[Any, ...] = tuple(
                getattr(owner, f.name) for f in dataclasses.fields(owner)
            )
        else:
            slots = [s for c in type(owner).__mro__ for s in getattr(c, "__slots__", ())]
            values = tuple(getattr(owner, s, None) for s in slots)
        ident: Any = (type(owner), values)
        try:
            hash(ident)
        except TypeError:
            ident = (type(owner), repr(values))
        with self._lock:
            work = self._by_value.get(ident)
            if work is None:
                work = self._by_value[ident] = make()
                while len(self._by_value) > self.limit:
                    self._by_value.popitem(last=False)
            else:
                self._by_value.move_to_end(ident)
            return work

    def works(self) -> list[PersistedWork]:
        with self._lock:
            return [w for _, w in self._by_id.values()] + list(self._by_value.values())


def _return_type(fn: Callable[..., Any]) -> Any:
    try:
        return typing.get_type_hints(fn).get("return", Any)
    except Exception:
        return Any


class _Spec:
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
        self.works: weakref.WeakSet[PersistedWork] = weakref.WeakSet()
        self.side = _SideWorks()
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

    def lookup_or_compute(
        self, work: PersistedWork, key: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        value = work._memory_get(self, key)
        if value is not MISSING:
            self.counts[0] += 1
            return value
        self.counts[1] += 1
        return self.flights.run(
            (id(work), key),
            lambda: work._memory_get(self, key),
            lambda: compute_entry(self, work, key, lambda: self.fn(*args, **kwargs)),
        )

    async def lookup_or_compute_async(
        self, work: PersistedWork, key: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        value = work._memory_get(self, key)
        if value is not MISSING:
            self.counts[0] += 1
            return value
        self.counts[1] += 1
        return await self.flights.run(
            (id(work), key),
            lambda: work._memory_get(self, key),
            lambda: compute_entry_async(self, work, key, lambda: self.fn(*args, **kwargs)),
        )

    def all_works(self) -> list[PersistedWork]:
        return list(self.works) + [w for w in self.side.works() if w not in self.works]

    def info(self) -> CacheInfo:
        size = sum(len(w._values) for w in self.all_works())
        return CacheInfo(self.counts[0], self.counts[1], size, self.max_items)

    def clear(self) -> None:
        for work in self.all_works():
            work.clear()
        self.clear_store()
        self.counts[:] = [0, 0]


class persisted:  # zensols spells it in lower case
    """Cache what a method, property, classmethod, staticmethod, function or ``async def``
    returns: in memory on its owner, optionally for every instance of the class
    (``cache_global``), in a file (``path``) and/or in a store shared by processes
    (``store=``: a URL, a Database or a stash; one computation per key across processes,
    through a lease item in that store).

    Arguments are part of the key (bound by the signature, so ``f(1)`` and ``f(x=1)`` are
    one entry); ``ignore`` leaves arguments out by name or position, ``typed`` keeps ``1``
    and ``1.0`` apart, ``key=`` computes the key. ``None`` is cached; a worker that raises
    caches nothing. ``ttl`` expires entries, ``max_items`` bounds each owner's memory.
    Files and store values are msgspec JSON (decoded to the return annotation), or
    ``codec="msgpack"``/``"pickle"`` (signed). The wrapper has ``cache_info()`` and
    ``cache_clear()``.

    Example::

        class Prices:
            @persisted(path=Path("prices"), ttl=timedelta(hours=1))
            def quote(self, symbol: str) -> float:
                return fetch(symbol)

        @persisted(store="sqlite:///memo.db")
        def embed(text: str) -> list[float]: ...
    """

    def __init__(
        self,
        name: str | None = None,
        path: Path | str | None = None,
        cache_global: bool = False,
        transient: bool = False,
        *,
        store: Any = None,
        ttl: dt.timedelta | None = None,
        ignore: Iterable[str | int] = (),
        typed: bool = False,
        key: Callable[..., Any] | None = None,
        max_items: int | None = None,
        codec: str = "json",
        mkdir: bool = False,
        lease_seconds: float = 300.0,
    ) -> None:
        if ttl is not None and ttl <= dt.timedelta(0):
            raise ValidationError("ttl must be positive", field="ttl")
        if max_items is not None and max_items < 1:
            raise ValidationError("max_items is at least 1", field="max_items")
        Codec(codec) if codec != "pickle" else None  # fail early on a bad codec name
        self.name = name
        self.path = path
        self.cache_global = cache_global
        self.transient = transient
        self.store = store
        self.ttl = ttl
        self.ignore = tuple(ignore)
        self.typed = typed
        self.key = key
        self.max_items = max_items
        self.codec = codec
        self.mkdir = mkdir
        self.lease_seconds = lease_seconds

    def __call__(self, target: Any) -> Any:
        if isinstance(target, property):
            if target.fget is None:
                raise ValidationError("@persisted needs a property with a getter", field="target")
            return property(self._wrap(target.fget, True), target.fset, target.fdel, target.__doc__)
        if isinstance(target, classmethod):
            return classmethod(self._wrap(target.__func__, True))
        if isinstance(target, staticmethod):
            return staticmethod(self._wrap(target.__func__, False))
        if not callable(target):
            raise ValidationError(
                "@persisted decorates a function, method or property", field="target"
            )
        params = list(inspect.signature(target).parameters)
        return self._wrap(target, bool(params) and params[0] in ("self", "cls"))

    def _wrap(self, fn: Callable[..., Any], method: bool) -> Any:
        spec = _Spec(fn, self, method=method)
        positional = spec.keys.positional
        name = spec.attr_name
        lookup: Any = spec.lookup_or_compute_async if spec.is_async else spec.lookup_or_compute
        plain = spec.ttl is None and spec.max_items is None and not self.cache_global

        if method:

            def work_of(owner: Any) -> PersistedWork:
                d = getattr(owner, "__dict__", None)
                if d is not None and not isinstance(owner, type):
                    found = d.get(name)
                    if found is not None and found._spec is spec:
                        return found  # type: ignore[no-any-return]
                return spec.work_for(owner)

            def key_of(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
                return (
                    args[1:]
                    if not kwargs and len(args) == positional
                    else spec.keys.key(args, kwargs)
                )
        else:
            function_work = spec.new_work(fn)

            def work_of(owner: Any) -> PersistedWork:
                return function_work

            def key_of(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
                return (
                    args if not kwargs and len(args) == positional else spec.keys.key(args, kwargs)
                )

        def resolve(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[PersistedWork, Any]:
            work = work_of(args[0] if method else None)
            key = key_of(args, kwargs)
            try:
                hash(key)
            except TypeError:  # unhashable arguments: key them by their text
                key = ("#", spec.keys.text(key))
            return work, key

        if spec.is_async:

            @functools.wraps(fn)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                work, key = resolve(args, kwargs)
                if plain:
                    value = work._values.get(key, MISSING)
                    if value is not MISSING:
                        spec.counts[0] += 1
                        return value
                return await lookup(work, key, args, kwargs)

            wrapper: Any = async_wrapper
        else:
            counts = spec.counts
            missing = MISSING
            if not method and plain and positional >= 0:
                # a function called with every argument by position: its arguments are its key
                get = function_work._values.get

                @functools.wraps(fn)
                def sync_wrapper(*args: Any, **kwargs: Any) -> Any:
                    if not kwargs:
                        try:
                            value = get(args, missing)
                        except TypeError:
                            value = missing
                        if value is not missing:
                            counts[0] += 1
                            return value
                    work, key = resolve(args, kwargs)
                    return lookup(work, key, args, kwargs)
            else:

                @functools.wraps(fn)
                def sync_wrapper(*args: Any, **kwargs: Any) -> Any:
                    work, key = resolve(args, kwargs)
                    if plain:
                        value = work._values.get(key, missing)
                        if value is not missing:
                            counts[0] += 1
                            return value
                    return lookup(work, key, args, kwargs)

            wrapper = sync_wrapper

        wrapper.cache_info = spec.info
        wrapper.cache_clear = spec.clear
        wrapper.cache_clear_async = _clear_async(spec)
        wrapper.__persisted__ = spec
        return wrapper


def _clear_async(spec: _Spec) -> Callable[[], Any]:
    async def cache_clear_async() -> None:
        """``cache_clear`` for an ``async def`` with an async store."""
        spec.clear()
        stashes = spec._stashes
        if stashes is not None and spec.is_async:
            for stash in dict.fromkeys(stashes):
                await stash.clear()

    return cache_clear_async


class PersistableContainer:
    """A base class whose instances pickle their :class:`PersistedWork` safely (zensols'
    ``PersistableContainer``): works are pickled without owner or worker (transient ones
    without their values), and the class attributes ``_PERSITABLE_TRANSIENT_ATTRIBUTES``
    (set to ``None``), ``_PERSITABLE_REMOVE_ATTRIBUTES`` (left out),
    ``_PERSITABLE_PROPERTIES`` (read first) and ``_PERSITABLE_METHODS`` (called first)
    shape what is pickled.

    Example::

        class Corpus(PersistableContainer):
            _PERSITABLE_TRANSIENT_ATTRIBUTES = {"connection"}

            @property
            @persisted("_docs", transient=True)
            def docs(self): ...

        corpus = Corpus()
        pickle.loads(pickle.dumps(corpus)).docs     # recomputed after unpickling
    """

    def __getstate__(self) -> dict[str, Any]:
        for attr in getattr(self, "_PERSITABLE_PROPERTIES", ()):
            getattr(self, attr)
        for attr in getattr(self, "_PERSITABLE_METHODS", ()):
            getattr(self, attr)()
        state = copy.copy(self.__dict__)
        for attr in getattr(self, "_PERSITABLE_TRANSIENT_ATTRIBUTES", ()):
            state[attr] = None
        for attr in getattr(self, "_PERSITABLE_REMOVE_ATTRIBUTES", ()):
            state.pop(attr, None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        for value in state.values():
            if isinstance(value, PersistedWork):
                value.owner = self

    def _clear_persistable_state(self) -> None:
        """Clear every :class:`PersistedWork` of this instance."""
        for value in list(self.__dict__.values()):
            if isinstance(value, PersistedWork):
                value.clear()
