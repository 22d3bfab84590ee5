"""@persisted: what zensols' version got wrong (arguments ignored, None not cached, a
failing worker's zero-byte file, 8 threads running the worker 8 times, async def, slotted
classes, lost __name__ and signature)."""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import inspect
import threading
import time
import weakref
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from persisty.errors import ValidationError
from persisty.memo import persisted


def test_arguments_are_part_of_the_key() -> None:
    calls = []

    @persisted()
    def f(x: Any, y: Any = 2) -> Any:
        calls.append((x, y))
        return x * y

    assert f(1) == 2 and f(5) == 10
    assert f(x=1) == 2 and f(1, 2) == 2 and f(1, y=2) == 2
    assert calls == [(1, 2), (5, 2)]
    assert f.cache_info().hits == 3 and f.cache_info().misses == 2 and f.cache_info().size == 2


def test_ignore_typed_and_custom_key() -> None:
    calls = []

    @persisted(ignore=("verbose",))
    def g(x: Any, verbose: Any = False) -> Any:
        calls.append(x)
        return x

    g(1), g(1, verbose=True), g(1, True)
    assert calls == [1]

    @persisted(ignore=(1,))
    def h(x: Any, y: Any) -> Any:
        calls.append((x, y))
        return x

    h(1, 2), h(1, 3)
    assert calls[-1] == (1, 2) and len(calls) == 2

    @persisted(typed=True)
    def t(x: Any) -> Any:
        return type(x).__name__

    assert t(1) == "int" and t(1.0) == "float"

    @persisted()
    def u(x: Any) -> Any:
        return type(x).__name__

    assert u(1) == "int" and u(1.0) == "int"  # 1 == 1.0: one entry, as functools.cache

    @persisted(key=lambda x, y: x % 10)
    def k(x: Any, y: Any) -> Any:
        return x

    assert k(3, 0) == 3 and k(13, 1) == 3
    with pytest.raises(ValidationError):
        persisted(ignore=("nope",))(lambda x: x)


def test_none_is_cached_and_failures_cache_nothing(tmp_path: Path) -> None:
    calls = []

    @persisted(path=tmp_path / "none.json")
    def nothing() -> Any:
        calls.append(1)
        return None

    assert nothing() is None and nothing() is None and calls == [1]
    assert (tmp_path / "none.json").read_bytes() == b"null"

    fail = [True]

    @persisted(path=tmp_path / "flaky.json")
    def flaky() -> int:
        calls.append(2)
        if fail[0]:
            raise RuntimeError("boom")
        return 7

    with pytest.raises(RuntimeError):
        flaky()
    assert not (tmp_path / "flaky.json").exists()
    assert list(tmp_path.glob(".*")) == []  # no temporary file either
    fail[0] = False
    assert flaky() == 7 and flaky() == 7
    assert calls.count(2) == 2


def test_files_keep_their_return_type(tmp_path: Path) -> None:
    class Owner:
        @persisted("_pairs", path=tmp_path / "pairs")
        def pairs(self, n: int) -> list[tuple[int, str]]:
            return [(i, str(i)) for i in range(n)]

    assert Owner().pairs(2) == [(0, "0"), (1, "1")]
    fresh = Owner()
    assert fresh.pairs(2) == [(0, "0"), (1, "1")]  # read from the file, as tuples


def test_one_computation_per_key_across_threads() -> None:
    calls = []
    barrier = threading.Barrier(8)

    @persisted()
    def slow(x: Any) -> Any:
        calls.append(x)
        time.sleep(0.05)
        return x * 2

    def run() -> Any:
        barrier.wait()
        return slow(3)

    threads = [threading.Thread(target=run) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert calls == [3]


async def test_async_def_caches_the_awaited_value() -> None:
    calls = []

    class Service:
        @persisted()
        async def fetch(self, x: int) -> int:
            calls.append(x)
            await asyncio.sleep(0.02)
            return x + 1

    s = Service()
    results = await asyncio.gather(*(s.fetch(1) for _ in range(8)))
    assert results == [2] * 8 and calls == [1]
    assert await s.fetch(1) == 2 and await s.fetch(2) == 3 and calls == [1, 2]
    assert inspect.iscoroutinefunction(Service.fetch)


def test_wraps_name_doc_signature() -> None:
    @persisted()
    def documented(a: int, b: str = "x") -> str:
        """Docs."""
        return b * a

    assert documented.__name__ == "documented" and documented.__doc__ == "Docs."
    assert inspect.signature(documented) == inspect.signature(documented.__wrapped__)
    assert list(inspect.signature(documented).parameters) == ["a", "b"]


def test_property_classmethod_staticmethod() -> None:
    calls: list[tuple[Any, ...]] = []

    class C:
        base = 10

        @classmethod
        @persisted("_cm")
        def cm(cls, x: Any) -> Any:
            calls.append(("cm", x))
            return cls.base + x

        @staticmethod
        @persisted()
        def sm(x: Any) -> Any:
            calls.append(("sm", x))
            return x * 3

        @persisted()
        @staticmethod
        def sm2(x: Any) -> Any:
            calls.append(("sm2", x))
            return -x

        @persisted()  # type: ignore[prop-decorator]
        @property
        def prop(self) -> Any:
            calls.append(("prop",))
            return 5

    assert C.cm(1) == 11 and C().cm(1) == 11
    assert C.sm(2) == 6 and C().sm(2) == 6
    assert C.sm2(4) == -4 and C.sm2(4) == -4
    c = C()
    assert c.prop == 5 and c.prop == 5
    assert calls == [("cm", 1), ("sm", 2), ("sm2", 4), ("prop",)]


@dataclasses.dataclass(slots=True, frozen=True)
class Frozen:
    x: int

    @persisted()
    def double(self) -> int:
        CALLS.append(self.x)
        return self.x * 2


@dataclasses.dataclass(slots=True, weakref_slot=True)
class Slotted:
    x: int

    @persisted()
    def triple(self, k: int = 1) -> int:
        CALLS.append(self.x)
        return self.x * 3 * k


CALLS: list[int] = []


def test_slotted_and_frozen_classes_are_not_kept_alive() -> None:
    CALLS.clear()
    f = Frozen(2)
    assert f.double() == 4 and f.double() == 4 and Frozen(2).double() == 4
    s = Slotted(3)
    assert s.triple() == 9 and s.triple(k=1) == 9 and s.triple(2) == 18
    assert CALLS == [2, 3, 3]
    ref = weakref.ref(s)
    del s
    gc.collect()
    assert ref() is None


def test_ttl_expires(tmp_path: Path) -> None:
    calls = []

    @persisted(ttl=timedelta(milliseconds=100))
    def now(x: Any) -> Any:
        calls.append(x)
        return len(calls)

    assert now(1) == 1 and now(1) == 1
    time.sleep(0.15)
    assert now(1) == 2


def test_cache_clear_and_max_items(tmp_path: Path) -> None:
    calls = []

    @persisted(path=tmp_path / "sq", max_items=2)
    def sq(x: int) -> int:
        calls.append(x)
        return x * x

    sq(1), sq(2), sq(3)
    assert sq.cache_info().size == 2 and sq.cache_info().maxsize == 2
    assert sq(1) == 1 and calls == [1, 2, 3]  # evicted from memory, read from its file
    sq.cache_clear()
    assert sq.cache_info() == (0, 0, 0, 2)
    assert sq(1) == 1 and calls == [1, 2, 3, 1]
