"""``@persisted``, ``PersistedWork`` and ``PersistableContainer``: method-result caching
with the names and meanings of zensols.persist, where arguments are part of the key, ``None``
is a value, a failing worker caches nothing, files are written atomically and each key is
computed once across threads, tasks and (with ``store=``) processes.

The per-owner state is in ``_work`` (``PersistedWork``), what one decorated function knows
in ``_spec`` (``Spec``), the hit path of a plain function in ``_fast``."""

from __future__ import annotations

import copy
import datetime as dt
import functools
import inspect
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from persisty.errors import ValidationError
from persisty.memo._fast import fast_wrapper
from persisty.memo._spec import Spec
from persisty.memo._work import CacheInfo, PersistedWork, spec_factory
from persisty.stash import MISSING, Codec

__all__ = ["CacheInfo", "PersistableContainer", "PersistedWork", "persisted"]


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
        spec = Spec(fn, self, method=method)
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
            fast = None
            if not method and plain and not self.typed and self.key is None:
                # a function: a wrapper with its own parameters, whose tuple is the key
                def miss(key: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
                    if key is None:  # unhashable arguments: key them by their text
                        key = ("#", spec.keys.text(spec.keys.key(args, kwargs)))
                    return lookup(function_work, key, args, kwargs)

                fast = fast_wrapper(
                    spec.keys.signature, spec.keys.ignored, function_work._values, miss
                )
            if fast is not None:
                sync_wrapper = functools.wraps(fn)(fast[0])
                spec.fast_hits, spec.fast_reset = fast[1], fast[2]
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


def _clear_async(spec: Spec) -> Callable[[], Any]:
    async def cache_clear_async() -> None:
        """``cache_clear`` for an ``async def`` with an async store."""
        spec.clear()
        stashes = spec._stashes
        if stashes is not None and spec.is_async:
            for stash in dict.fromkeys(stashes):
                await stash.clear()

    return cache_clear_async


def _spec_of_worker(work: PersistedWork) -> Spec:
    assert work.worker is not None
    return Spec(work.worker, persisted(work.varname), method=False)


spec_factory(_spec_of_worker)


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
