"""The per-owner state of ``@persisted`` (plain code): :class:`PersistedWork` (zensols'
name; the memory, file and global tiers of one method on one owner), the works of owners
without a ``__dict__`` (slotted, frozen), and :class:`CacheInfo`."""

from __future__ import annotations

import copy
import dataclasses
import os
import re
import threading
import time
import uuid
import weakref
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from persisty.errors import PersistyError
from persisty.stash import MISSING

if TYPE_CHECKING:
    from persisty.memo._spec import Spec

_SPEC_OF_WORKER: list[Callable[[PersistedWork], Spec]] = []
"""How a work made by hand (``work.worker = fn``) gets its spec: set by ``@persisted``'s
module (:func:`spec_factory`), which knows how to make one."""


def spec_factory(make: Callable[[PersistedWork], Spec]) -> None:
    """Set how a work made by hand gets its spec."""
    _SPEC_OF_WORKER[:] = [make]


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
        self._spec: Spec | None = None
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

    def _own_spec(self) -> Spec:
        if self.worker is None:
            raise PersistyError(f"{self.varname}: no worker to compute the value")
        return _SPEC_OF_WORKER[0](self)

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

    def _memory_get(self, spec: Spec, key: Any) -> Any:
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

    def _memory_set(self, spec: Spec, key: Any, value: Any) -> None:
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

    def _file(self, spec: Spec, key: Any) -> Path:
        if not spec.keys.has_args:
            return self.path
        return self.path / f"{spec.keys.text(key)}.dat"

    def _file_get(self, spec: Spec, key: Any) -> Any:
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

    def _file_set(self, spec: Spec, key: Any, value: Any) -> None:
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


class SideWorks:
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
