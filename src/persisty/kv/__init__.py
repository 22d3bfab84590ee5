"""Key/value pairs, time series and event sequences on any persisty store (rstore absorbed).

``KeyValue``, ``TimeSeries`` and ``EventLog`` each keep one namespace of one stored type;
``Store`` is rstore's one object with all three. Every class has an async twin
(``AsyncKeyValue`` …) with the same methods, awaitable.

Example::

    from persisty.kv import KeyValue, TimeSeries, EventLog, Store

    kv = KeyValue("sqlite:///data.db", namespace="app")
    kv["greeting"] = "hello"; kv.incr("hits")
    ts = TimeSeries(kv.db, freq=60); ts.extend("temp", (0, 20.5), (60, 20.7))
    log = EventLog(kv.db); log.apply("cart", {"apples": 3})
    with Store("sqlite:///data.db", frozen=False) as s:
        s.set("k", 1); s.extend("series", (1, 10)); s.apply("doc", {"title": "x"})
"""

from __future__ import annotations

from typing import Any, Protocol

from persisty import errors
from persisty.kv._async.eventlog import AsyncEventLog
from persisty.kv._async.keyvalue import AsyncKeyValue
from persisty.kv._async.onestore import AsyncStore
from persisty.kv._async.timeseries import AsyncTimeSeries
from persisty.kv._codec import Codec, FunctionCodec, JsonCodec, PickleCodec, make_codec
from persisty.kv._import import import_rstore
from persisty.kv._models import EventRow, KVPair, Point
from persisty.kv._ops import register_op
from persisty.kv._sync import _base
from persisty.kv._sync import eventlog as _eventlog
from persisty.kv._sync import keyvalue as _keyvalue
from persisty.kv._sync import onestore as _onestore
from persisty.kv._sync import timeseries as _timeseries

StoreError = errors.PersistyError
"""rstore's base error: every persisty error."""
FrozenStoreError = errors.Forbidden
"""rstore's error for a write to a frozen (read-only) store."""
StoreNotAvailableError = errors.Unavailable
"""rstore's error for a store that cannot be found or reached."""
StoreIntegrityError = errors.Conflict
"""rstore's error for an event at a ``(key, t)`` that already has one."""

_MISSING: Any = _keyvalue._MISSING


class _Pairs(Protocol):
    def get(self, key: str, default: Any = None) -> Any: ...
    def set(self, key: str, value: Any, *, ttl: Any = None, if_match: str | None = None) -> str: ...
    def delete(self, *keys: str) -> int: ...
    def has(self, key: str) -> bool: ...
    def count(self) -> int: ...
    def keys(self) -> list[str]: ...


class _DictOfPairs:
    """The dict methods rstore users know (``s[k]``, ``del s[k]``, ``k in s``, ``len(s)``,
    iteration over the keys), for ``KeyValue`` and the one-object ``Store`` alike."""

    def __getitem__(self: _Pairs, key: str) -> Any:
        value = self.get(key, _MISSING)
        if value is _MISSING:
            raise KeyError(key)
        return value

    def __setitem__(self: _Pairs, key: str, value: Any) -> None:
        self.set(key, value)

    def __delitem__(self: _Pairs, key: str) -> None:
        if not self.delete(key):
            raise KeyError(key)

    def __contains__(self: _Pairs, key: object) -> bool:
        return isinstance(key, str) and self.has(key)

    def __len__(self: _Pairs) -> int:
        return self.count()

    def __iter__(self: _Pairs) -> Any:
        return iter(self.keys())


class _CheckedAtOnce(_base.Service):
    """A service that checks at construction that a frozen store's table exists (the sync
    classes' ``__init__`` for the signature that ``KeyValue`` and ``EventLog`` share)."""

    def __init__(
        self,
        db_or_url: Any,
        namespace: str = "default",
        *,
        codec: Any = "json",
        keys: Any = None,
        frozen: bool = False,
    ) -> None:
        super().__init__(db_or_url, namespace, codec=codec, keys=keys, frozen=frozen)
        self.check()


class KeyValue(_CheckedAtOnce, _keyvalue.KeyValue, _DictOfPairs):
    """Key/value pairs in one namespace; also a dict: ``kv[k]``, ``kv[k] = v``,
    ``del kv[k]``, ``k in kv``, ``len(kv)``, iteration over the keys.

    A frozen one raises ``Unavailable`` at once when its table does not exist.

    Example::

        kv = KeyValue("memory://")
        kv["a"] = 1
        assert kv.incr("a") == 2 and len(kv) == 1 and "a" in kv
    """


class TimeSeries(_timeseries.TimeSeries):
    """Time series in one namespace (see :class:`AsyncTimeSeries`); a frozen one raises
    ``Unavailable`` at once when its table does not exist.

    Example::

        ts = TimeSeries("memory://", freq=10)
        ts.extend("t", (0, 1.0), (10, 2.0))
        assert ts.missing("t", 0, 30) == [20, 30]
    """

    def __init__(
        self,
        db_or_url: Any,
        namespace: str = "default",
        *,
        freq: int | None = None,
        codec: Any = "json",
        keys: Any = None,
        frozen: bool = False,
    ) -> None:
        super().__init__(db_or_url, namespace, freq=freq, codec=codec, keys=keys, frozen=frozen)
        self.check()


class EventLog(_CheckedAtOnce, _eventlog.EventLog):
    """Event sequences in one namespace (see :class:`AsyncEventLog`); a frozen one raises
    ``Unavailable`` at once when its table does not exist.

    Example::

        import operator
        log = EventLog("memory://")
        log.apply("d", {"n": 1}); log.apply("d", {"n": (operator.add, 2)})
        assert log.current("d") == {"n": 3}
    """


class Store(_onestore.Store, _DictOfPairs):
    """rstore's one object: key/value, time-series and event-sequence methods together;
    also a dict over the key/value pairs. Opening (``with``) a frozen store that does not
    exist raises ``StoreNotAvailableError`` (``Unavailable``) and creates nothing.

    Example::

        with Store("sqlite:///data.db", frozen=False) as s:
            s["k"] = 1
            s.extend("series", (1, 10), (2, 20))
            s.apply("cart", {"apples": 3})
    """

    def __enter__(self) -> Store:
        try:
            self.open()
        except errors.PersistyError:
            raise
        except Exception as e:  # a server that cannot be reached
            raise StoreNotAvailableError(f"{self.db.url}: {e}") from e
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = [
    "AsyncEventLog",
    "AsyncKeyValue",
    "AsyncStore",
    "AsyncTimeSeries",
    "Codec",
    "EventLog",
    "EventRow",
    "FrozenStoreError",
    "FunctionCodec",
    "JsonCodec",
    "KVPair",
    "KeyValue",
    "PickleCodec",
    "Point",
    "Store",
    "StoreError",
    "StoreIntegrityError",
    "StoreNotAvailableError",
    "TimeSeries",
    "import_rstore",
    "make_codec",
    "register_op",
]
