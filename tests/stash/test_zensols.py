"""zensols.persist's own stash tests, on persisty's stashes (None a value, deleting a
missing key a no-op; otherwise the same names and meanings)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import pytest

from persisty.stash import (
    CacheStash,
    DictionaryStash,
    DirectoryStash,
    FactoryStash,
    ReadOnlyStash,
    ShelveStash,
    shelve,
)


class IncStash(ReadOnlyStash):
    def __init__(self) -> None:
        super().__init__()
        self.c = 0

    def load(self, name: Any) -> Any:
        self.c += 1
        return f"{name}-{self.c}"

    def keys(self, prefix: str | None = None) -> Any:
        return ()


class RangeStash(ReadOnlyStash):
    def __init__(self, n: int) -> None:
        super().__init__()
        self.n = n

    def load(self, name: Any) -> Any:
        n = int(name)
        if n >= self.n:
            return None
        return name

    def keys(self, prefix: str | None = None) -> Any:
        return range(self.n)


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("target").mkdir()


def test_dict() -> None:
    ds = DictionaryStash()
    assert len(list(ds.keys())) == 0
    assert not ds.exists("a")
    ds.dump("a", 1)
    assert ds.exists("a")
    assert ds.load("a") == 1
    assert ds["a"] == 1
    assert ds.get("a") == 1
    assert ds.get("b", 2) == 2
    ds.delete("a")
    assert len(list(ds.keys())) == 0
    assert not ds.exists("a")


def test_caching() -> None:
    st = FactoryStash(DictionaryStash(), IncStash())
    assert st["first"] == "first-1"
    assert st.get("first") == "first-1"
    assert st["second"] == "second-2"
    assert st["first"] == "first-1"
    assert st["second"] == "second-2"
    assert len(st) == 2
    assert st.keys() == {"first", "second"}


def test_key_group() -> None:
    stash = RangeStash(5)
    assert tuple(stash) == ((0, 0), (1, 1), (2, 2), (3, 3), (4, 4))
    assert tuple(stash.key_groups(3)) == ([0, 1, 2], [3, 4])
    assert tuple(stash.key_groups(2)) == ([0, 1], [2, 3], [4])
    assert tuple(stash.key_groups(4)) == ([0, 1, 2, 3], [4])
    assert tuple(stash.key_groups(5)) == ([0, 1, 2, 3, 4],)
    assert tuple(stash.key_groups(6)) == ([0, 1, 2, 3, 4],)


def test_not_exist() -> None:
    stash = RangeStash(5)
    assert stash.exists(4)
    assert not stash.exists(5)
    assert stash.get(4) == 4
    assert stash.get(5) is None
    assert stash.get(6) is None
    assert not stash.exists(6)
    assert stash.get(6, "nada") == "nada"


def test_cache_stash() -> None:
    stash = CacheStash(delegate=RangeStash(5))
    assert tuple(stash) == ((0, 0), (1, 1), (2, 2), (3, 3), (4, 4))
    assert cast(DictionaryStash, stash.cache_stash).data == {0: 0, 1: 1, 2: 2, 3: 3, 4: 4}
    stash.delete(3)
    assert cast(DictionaryStash, stash.cache_stash).data == {0: 0, 1: 1, 2: 2, 4: 4}
    # the range stash is read only: deleting only evicts from the cache
    assert tuple(stash) == ((0, 0), (1, 1), (2, 2), (3, 3), (4, 4))
    assert tuple(sorted(stash.cache_stash, key=lambda x: x[0])) == (
        (0, 0),
        (1, 1),
        (2, 2),
        (3, 3),
        (4, 4),
    )
    stash.clear()
    assert cast(DictionaryStash, stash.cache_stash).data == {}


def test_dir_stash() -> None:
    file_path = Path("target") / "tmp5.dat"
    s = DirectoryStash(Path("target"))
    assert not file_path.exists()
    obj = "obj create of tmp5"
    assert s.load("tmp5") is None
    assert not file_path.exists()
    s.dump("tmp5", obj)
    assert file_path.exists()
    assert s.load("tmp5") == obj
    s.delete("tmp5")
    assert not file_path.exists()


def test_shelve_stash() -> None:
    file_path = Path("target/tmp6.db")
    s = ShelveStash(file_path)
    assert s.load("tmp6") is None
    assert file_path.exists()
    s.dump("tmp6", "obj create of tmp6")
    assert s.load("tmp6") == "obj create of tmp6"
    s.delete("tmp6")
    assert not s.exists("tmp6")
    s.close()


def test_shelve_stash_with() -> None:
    path = Path("target/tmp7.db")
    with shelve(path) as s:
        assert not s.exists("cool")
    assert path.exists()
    with shelve(path) as s:
        s.dump("cool", [1, 2, 123])
        assert s.load("cool") == [1, 2, 123]
    with shelve(path) as s:
        assert s.load("cool") == [1, 2, 123]
