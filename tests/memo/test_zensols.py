"""zensols.persist's own @persisted tests on persisty.memo (a method with arguments keys
each call by its arguments, so get_prop(5) is computed, not served from get_prop(10))."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import pytest

from persisty.memo import PersistableContainer, PersistedWork, persisted


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("target").mkdir()


class SomeClass(PersistableContainer):
    def __init__(self, n: Any) -> None:
        self.n = n
        self._sp = PersistedWork(Path("target/tmp.dat"), owner=self)

    @property
    @persisted("_sp")
    def someprop(self) -> Any:
        return self.n * 2


class AnotherClass:
    counter: PersistedWork  # made by @persisted on first use

    def __init__(self, n: Any) -> None:
        self.n = n

    @property
    @persisted("counter", Path("target/tmp2.dat"))
    def someprop(self) -> Any:
        return self.n * 2


class YetAnotherClass:
    counter: PersistedWork  # made by @persisted on first use

    @persisted("counter", Path("target/tmp3.dat"))
    def get_prop(self, n: Any) -> Any:
        return n * 2


class HybridClass:
    def __init__(self, n: Any) -> None:
        self.n = n
        self._counter = PersistedWork(Path("target/tmp4.dat"), owner=self)

    def clear(self) -> Any:
        self._counter.clear()

    @property
    @persisted("_counter")
    def someprop(self) -> Any:
        return self.n * 2


class HybridClassPickle(HybridClass, PersistableContainer):
    pass


class PropertyOnlyClass(PersistableContainer):
    _someprop: PersistedWork  # made by @persisted on first use

    def __init__(self, n: Any) -> None:
        self.n = n

    @property
    @persisted("_someprop")
    def someprop(self) -> Any:
        self.n += 10
        return self.n


class GlobalTest:
    _someprop: PersistedWork  # made by @persisted on first use

    def __init__(self, n: Any) -> None:
        self.n = n

    @property
    @persisted("_someprop", cache_global=True)
    def someprop(self) -> Any:
        self.n += 10
        return self.n


class GlobalTestPickle(PersistableContainer):
    def __init__(self, n: Any) -> None:
        self.n = n

    @property
    @persisted("_someprop", cache_global=True)
    def someprop(self) -> Any:
        self.n += 10
        return self.n


class TransientPickle(PersistableContainer):
    def __init__(self, n: Any) -> None:
        self.n = n

    @property
    @persisted("_someprop", transient=True)
    def someprop(self) -> Any:
        self.n += 10
        return self.n


class TransientPickleOverride(TransientPickle):
    def __setstate__(self, state: Any) -> Any:
        super().__setstate__(state)
        self.n = 40


def _freeze_thaw(o: Any) -> Any:
    return pickle.loads(pickle.dumps(o))


def test_class_meth() -> None:
    path = Path("target/tmp.dat")
    assert not path.exists()
    assert SomeClass(10).someprop == 20
    assert path.exists()
    assert SomeClass(5).someprop == 20
    sc = SomeClass(8)
    sc._sp.clear()
    assert sc.someprop == 16


def test_property_meth() -> None:
    sc = AnotherClass(10)
    assert sc.someprop == 20
    assert isinstance(sc.counter, PersistedWork)
    assert Path("target/tmp2.dat").exists()
    assert AnotherClass(5).someprop == 20
    sc = AnotherClass(8)
    assert sc.someprop == 20  # from the file; creates the work first, as in zensols
    sc.counter.clear()
    assert sc.someprop == 16


def test_getter_meth_keys_by_argument() -> None:
    sc = YetAnotherClass()
    assert sc.get_prop(10) == 20
    assert isinstance(sc.counter, PersistedWork)
    assert Path("target/tmp3.dat").exists()  # a directory: one file per argument key
    assert YetAnotherClass().get_prop(5) == 10
    assert YetAnotherClass().get_prop(n=10) == 20
    assert len(list(Path("target/tmp3.dat").glob("*.dat"))) == 2
    sc.counter.clear()
    assert list(Path("target/tmp3.dat").glob("*.dat")) == []
    assert sc.get_prop(8) == 16


def test_hybrid_meth() -> None:
    assert HybridClass(10).someprop == 20
    assert Path("target/tmp4.dat").exists()
    assert HybridClass(5).someprop == 20
    sc = HybridClass(8)
    assert sc.someprop == 20  # from the file; creates the work first, as in zensols
    sc.clear()
    assert sc.someprop == 16


def test_property_cache_only() -> None:
    po = PropertyOnlyClass(100)
    assert po.someprop == 110
    assert isinstance(po._someprop, PersistedWork)
    po.n = 10
    assert po.someprop == 110
    po._someprop.clear()
    assert po.someprop == 20
    assert PropertyOnlyClass(3).someprop == 13


def test_global() -> None:
    gt = GlobalTest(100)
    assert gt.someprop == 110
    gt = GlobalTest(10)
    gt.n = 1
    assert gt.someprop == 110
    assert gt.someprop == 110
    gt._someprop.clear_global()


def test_set() -> None:
    po = PropertyOnlyClass(5)
    assert po.someprop == 15
    assert type(po._someprop) is PersistedWork
    assert po._someprop.is_set()
    po._someprop.set(20)
    assert po.someprop == 20


def test_pickle() -> None:
    sc = SomeClass(5)
    assert sc.someprop == 10
    sc2 = _freeze_thaw(sc)
    assert type(sc2) is SomeClass and sc2.someprop == 10


def test_pickle_proponly() -> None:
    sc = PropertyOnlyClass(2)
    assert sc.someprop == 12
    assert sc.someprop == 12
    sc2 = _freeze_thaw(sc)
    assert type(sc2) is PropertyOnlyClass and sc2.someprop == 12


def test_pickle_global() -> None:
    sc = GlobalTestPickle(2)
    assert sc.someprop == 12
    sc2 = _freeze_thaw(sc)
    assert type(sc2) is GlobalTestPickle and sc2.someprop == 12


def test_pickle_hybrid() -> None:
    sc = HybridClassPickle(2)
    assert sc.someprop == 4
    sc2 = _freeze_thaw(sc)
    assert type(sc2) is HybridClassPickle and sc2.someprop == 4


def test_pickle_transient_two_pass() -> None:
    sc = TransientPickle(10)
    sc.n = 2
    assert sc.someprop == 12
    sc2 = _freeze_thaw(sc)
    sc2.n = 3
    assert sc2.someprop == 13  # recomputed: the transient value was not pickled
    sc3 = _freeze_thaw(sc)
    sc3.n = 4
    assert sc.someprop == 12 and sc2.someprop == 13 and sc3.someprop == 14


def test_pickle_transient_override() -> None:
    sc = TransientPickleOverride(2)
    assert sc.someprop == 12
    assert _freeze_thaw(sc).someprop == 50


class Container(PersistableContainer):
    _PERSITABLE_TRANSIENT_ATTRIBUTES = {"conn"}
    _PERSITABLE_REMOVE_ATTRIBUTES = {"scratch"}
    _PERSITABLE_PROPERTIES = {"total"}
    _PERSITABLE_METHODS = {"warm"}

    def __init__(self) -> None:
        self.conn = object()
        self.scratch = [1]
        self.warmed = 0
        self.computed = 0

    @property
    @persisted("_total")
    def total(self) -> Any:
        self.computed += 1
        return 42

    def warm(self) -> Any:
        self.warmed += 1


def test_container_attributes() -> None:
    c = Container()
    c2 = _freeze_thaw(c)
    assert c.warmed == 1 and c.computed == 1  # forced before pickling
    assert c2.conn is None and not hasattr(c2, "scratch")
    assert c2.total == 42 and c2.computed == 1
