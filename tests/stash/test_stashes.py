"""The stackable and backing stashes: what zensols got wrong is right here."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from persisty.errors import Forbidden, IntegrityError, ValidationError
from persisty.stash import (
    CacheStash,
    DictionaryStash,
    DirectoryStash,
    FactoryStash,
    IncrementKeyDirectoryStash,
    IncrementKeyStash,
    KeyLimitStash,
    KeySubsetStash,
    LRUCacheStash,
    OneShotFactoryStash,
    PreemptiveStash,
    PrimeableStash,
    ProtectiveStash,
    ReadOnlyStash,
    SortedStash,
    StashedError,
    StoreStash,
    UnionStash,
)


class Counting(DictionaryStash):
    """A dictionary stash that counts its lookups."""

    def __init__(self, data: Any = None) -> None:
        super().__init__(data)
        self.lookups = 0

    def _lookup(self, key: Any) -> Any:
        self.lookups += 1
        return super()._lookup(key)


def test_none_is_a_value_and_delete_missing_is_a_noop(tmp_path: Path) -> None:
    for stash in (DictionaryStash(), DirectoryStash(tmp_path / "d"), StoreStash("memory://", "n")):
        stash.dump("a", None)
        assert stash.exists("a") and "a" in stash
        assert stash.get("a", 5) is None
        assert stash["a"] is None
        assert dict(stash) == {"a": None}
        stash.delete("missing")
        stash.delete("a")
        stash.delete("a")
        assert stash.get("a", 5) == 5
        with pytest.raises(KeyError):
            stash["a"]


def test_directory_keys_never_leave_the_directory(tmp_path: Path) -> None:
    root = tmp_path / "stash"
    stash = DirectoryStash(root)
    for key in ("../escaped", "../../x", "a/b", "/etc/passwd", ".hidden", "..", "", "%41", "ü"):
        stash.dump(key, key)
    assert not (tmp_path / "escaped.dat").exists()
    assert sorted(p.parent for p in tmp_path.rglob("*.dat")) == [root] * 9
    assert sorted(stash.keys()) == sorted(
        ["../escaped", "../../x", "a/b", "/etc/passwd", ".hidden", "..", "", "%41", "ü"]
    )
    assert stash.get("../escaped") == "../escaped" and stash.get("%41") == "%41"


def test_directory_reads_create_nothing(tmp_path: Path) -> None:
    stash = DirectoryStash(tmp_path / "none")
    assert stash.get("a") is None and not stash.exists("a") and list(stash.keys()) == []
    assert len(stash) == 0
    assert not (tmp_path / "none").exists()


def test_directory_failed_dump_leaves_the_old_value(tmp_path: Path) -> None:
    stash = DirectoryStash(tmp_path)
    stash.dump("a", 1)
    with pytest.raises(ValidationError):
        stash.dump("a", object())  # json cannot encode it
    assert stash.get("a") == 1
    with pytest.raises(ValidationError):
        stash.dump("b", object())
    assert not stash.exists("b")
    assert [p.name for p in tmp_path.iterdir()] == ["a.dat"]


def test_directory_pattern_and_codecs(tmp_path: Path) -> None:
    stash = DirectoryStash(tmp_path, "run-{name}.bin", codec="msgpack")
    stash.dump("x", {"a": [1, 2]})
    assert (tmp_path / "run-x.bin").exists()
    assert stash.get("x") == {"a": [1, 2]}
    with pytest.raises(ValidationError):
        DirectoryStash(tmp_path, "no-name.dat")
    with pytest.raises(ValidationError):
        DirectoryStash(tmp_path, codec="yaml")


def test_pickle_only_when_asked_and_signed(tmp_path: Path) -> None:
    stash = DirectoryStash(tmp_path, codec="pickle", secret="s3cret")
    stash.dump("a", {1, 2, 3})  # a set: only pickle keeps it a set
    assert stash.get("a") == {1, 2, 3}
    file = tmp_path / "a.dat"
    data = bytearray(file.read_bytes())
    data[-1] ^= 1
    file.write_bytes(bytes(data))
    with pytest.raises(IntegrityError):
        stash.get("a")
    # a valid pickle under another secret is refused too, before unpickling
    DirectoryStash(tmp_path, codec="pickle", secret="other").dump("b", 1)
    with pytest.raises(IntegrityError):
        stash.get("b")


class _Touches:
    """A pickle whose loading has an effect: it creates ``path`` (proof of unpickling)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return (Path.touch, (self.path,))


@pytest.mark.parametrize("engine", ["memory", "sqlite"])
def test_tampered_pickle_in_a_store_is_refused_before_unpickling(
    engine: str, tmp_path: Path
) -> None:
    import pickle

    url = "memory://" if engine == "memory" else f"sqlite:///{tmp_path / 'p.db'}"
    stash = StoreStash(url, "p", codec="pickle")
    stash.dump("a", ("t", 1))
    assert stash.get("a") == ("t", 1)
    entry = stash.store.read("a")
    assert entry is not None
    proof = tmp_path / "unpickled"
    evil = pickle.dumps(_Touches(proof))
    pickle.loads(evil)  # the payload works: loading it creates the file
    assert proof.exists()
    proof.unlink()
    # the stored tag kept, the payload swapped
    stash.store.update(type(entry)(key="a", value=entry.value[:36] + evil))
    with pytest.raises(IntegrityError):
        stash.get("a")
    with pytest.raises(IntegrityError):
        stash.load("a")
    assert not proof.exists()  # refused before unpickling
    stash.close()


def test_pickle_key_derives_from_the_database_secret(tmp_path: Path) -> None:
    import persisty

    url = f"sqlite:///{tmp_path}/p.db"
    with persisty.connect(url, secret="one secret of the database") as db:
        StoreStash(db, "p", codec="pickle").dump("a", {1, 2})
    with persisty.connect(url, secret="one secret of the database") as db:
        assert StoreStash(db, "p", codec="pickle").get("a") == {1, 2}
        # the key is derived for this purpose, not the secret itself
        codec = StoreStash(db, "p", codec="pickle").codec
        assert codec._key is not None and b"one secret" not in codec._key
    with (
        persisty.connect(url, secret="another secret altogether") as db,
        pytest.raises(IntegrityError),
    ):
        StoreStash(db, "p", codec="pickle").get("a")


def test_read_only_refuses_writes() -> None:
    stash = ReadOnlyStash(DictionaryStash({"a": 1}))
    assert stash["a"] == 1 and len(stash) == 1
    writes: list[Callable[[], None]] = [
        lambda: stash.dump("b", 2),
        lambda: stash.delete("a"),
        stash.clear,
    ]
    for write in writes:
        with pytest.raises(Forbidden):
            write()
    assert stash.keys() == {"a"}


def test_cache_stash_does_not_cache_misses() -> None:
    backing = Counting()
    stash = CacheStash(backing)
    assert stash.get("a") is None
    backing.dump("a", 1)  # created behind the cache's back
    assert stash.get("a") == 1
    assert stash.get("a") == 1
    assert backing.lookups == 2
    stash.dump("b", None)
    assert stash.get("b", 5) is None and backing.lookups == 2


def test_lru_every_read_counts_as_a_use() -> None:
    backing = Counting({k: k for k in "abc"})
    stash = LRUCacheStash(2, backing)
    stash.get("a"), stash.get("b")
    stash.get("a")  # a is now the most recent: c evicts b
    stash.get("c")
    assert list(stash.lru) == ["a", "c"]
    before = backing.lookups
    stash.get("a")
    assert backing.lookups == before


def test_factory_none_is_stored() -> None:
    calls = []

    class Maker(ReadOnlyStash):
        def load(self, key: Any) -> Any:
            calls.append(key)
            return None

        def keys(self, prefix: Any = None) -> Any:
            return []

    delegate = DictionaryStash()
    stash = FactoryStash(delegate, Maker())
    assert stash.get("x", 5) is None
    assert stash.get("x", 5) is None
    assert calls == ["x"] and delegate.data == {"x": None}


def test_union_dedupes_first_wins_and_default() -> None:
    u = UnionStash([DictionaryStash({"a": 1}), DictionaryStash({"a": 2, "b": 3})])
    assert list(u.keys()) == ["a", "b"] and len(u) == 2
    assert u["a"] == 1 and u.get("b") == 3 and u.get("z", "d") == "d"
    assert dict(u) == {"a": 1, "b": 3}
    with pytest.raises(Forbidden):
        u.dump("c", 1)


def test_key_limit_subset_sorted() -> None:
    base = DictionaryStash({str(i): i for i in range(10)})
    limited = KeyLimitStash(base, limit=3)
    assert list(limited.keys()) == ["0", "1", "2"] and len(limited) == 3
    assert limited.get("5") is None and limited.exists("2")
    subset = KeySubsetStash(base, {"3", "4", "missing"}, dynamic_subset=True)
    assert sorted(subset.keys()) == ["3", "4"] and subset.get("5") is None
    assert list(
        SortedStash(DictionaryStash({"b": 1, "a": 2, "c": 0}), sort_function=None).keys()
    ) == ["a", "b", "c"]
    assert list(SortedStash(DictionaryStash({"10": 1, "9": 2}), int).keys()) == ["9", "10"]


def test_preemptive_and_primeable() -> None:
    base = DictionaryStash()
    pre = PreemptiveStash(base)
    assert pre.has_data is False
    base.dump("a", 1)
    assert pre.has_data is False  # known until invalidated
    pre.invalidate()
    assert pre.has_data is True

    primed = []

    class Loaded(PrimeableStash):
        def prime(self):
            primed.append(1)
            self.delegate.dump_all([("x", 1), ("y", 2)])

    stash = Loaded(DictionaryStash())
    assert stash.get("x") == 1 and len(stash) == 2 and primed == [1]


def test_one_shot_crashed_fill_is_redone_not_served() -> None:
    delegate = DictionaryStash()
    runs = []

    def failing() -> Any:
        runs.append(1)
        yield from ((str(i), i) for i in range(5))
        raise RuntimeError("crash in the middle of the fill")

    with pytest.raises(RuntimeError):
        OneShotFactoryStash(delegate, failing, batch_size=2).get("0")
    assert not OneShotFactoryStash(delegate, lambda: iter(())).has_data

    def good() -> Any:
        runs.append(2)
        return ((str(i), i) for i in range(5))

    stash = OneShotFactoryStash(delegate, good, batch_size=2)
    assert stash.get("4") == 4 and len(stash) == 5 and sorted(stash.keys()) == list("01234")
    again = OneShotFactoryStash(delegate, good)
    assert again.get("3") == 3 and runs == [1, 2]


def test_protective_stores_the_error(tmp_path: Path) -> None:
    stash = ProtectiveStash(DirectoryStash(tmp_path))
    stash.dump("ok", 1)
    stash.dump("bad", object())
    err = stash.get("bad")
    assert isinstance(err, StashedError) and err.type_name == "ValidationError"
    assert stash.get("ok") == 1


def test_increment_key_threads_never_collide(tmp_path: Path) -> None:
    for stash in (
        IncrementKeyStash(StoreStash("memory://", "inc")),
        IncrementKeyDirectoryStash(tmp_path, name="run"),
        IncrementKeyStash(DictionaryStash()),
    ):
        keys: list[str] = []
        lock = threading.Lock()

        def write(stash: Any = stash, keys: Any = keys, lock: Any = lock) -> None:
            for i in range(10):
                k = stash.dump({"i": i})
                with lock:
                    keys.append(k)

        threads = [threading.Thread(target=write) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(set(keys)) == 40 and len(stash) == 40
        assert stash.load() == stash.get(stash.get_last_key())
    assert (tmp_path / "run-1.dat").exists()


def _append_runs(path: str) -> list[str]:
    stash = IncrementKeyDirectoryStash(Path(path), name="run")
    return [stash.dump(os.getpid()) for _ in range(15)]


def test_increment_key_directory_processes_never_collide(tmp_path: Path) -> None:
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(4) as pool:
        results = list(pool.map(_append_runs, [str(tmp_path)] * 4))
    keys = [k for r in results for k in r]
    assert len(set(keys)) == 60
    assert len(IncrementKeyDirectoryStash(tmp_path, name="run")) == 60


def test_lru_alone_as_in_zensols() -> None:
    from collections import OrderedDict

    def check(stash: LRUCacheStash) -> None:
        assert type(stash.data) is OrderedDict and len(stash.data) == 0
        stash.dump("a", 1)
        assert tuple(stash.keys()) == ("a",) and tuple(stash.values()) == (1,)
        assert stash["a"] == 1 and stash.load("a") == 1
        with pytest.raises(KeyError, match=r"^'b'"):
            stash["b"]
        stash.dump("b", 2)
        assert sorted(stash.keys()) == ["a", "b"] and stash.load("a") == 1
        assert stash.load("b") == 2
        stash.dump("c", 3)
        assert len(stash.data) == 2 and sorted(stash.keys()) == ["b", "c"]
        assert stash["c"] == 3 and stash.get("a") is None
        with pytest.raises(KeyError, match=r"^'a'"):
            stash["a"]

    stash = LRUCacheStash(2)
    check(stash)
    stash.clear()
    check(stash)


def test_preemptive_as_in_zensols() -> None:
    class Range(ReadOnlyStash):
        def __init__(self, n: int) -> None:
            super().__init__()
            self.n, self.keyed, self.loaded = n, False, False

        def load(self, name: Any) -> Any:
            self.loaded = True
            return name if self.exists(name) else None

        def keys(self, prefix: str | None = None) -> Any:
            self.keyed = True
            return range(self.n)

        def exists(self, name: Any) -> Any:
            return int(name) < self.n

    rs = Range(3)
    pe = PreemptiveStash(rs)
    assert pe.has_data and rs.keyed and not rs.loaded
    assert tuple(pe) == ((0, 0), (1, 1), (2, 2)) and rs.loaded
