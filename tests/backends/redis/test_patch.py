"""A patch without ``if_match`` or a precondition is one script call on Redis, with no read:
the script splices the changed values into the stored document, moves the index entries,
adds increments, and leaves the etag for readers to compute (the content hash), which a
conditional write fills in first. (Commands are recorded on the real client.)"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import pytest

from persisty import F, Increment, Index, stored
from persisty.backends.redis import AsyncRedisDatabase, RedisDatabase
from persisty.errors import NotFound, PreconditionFailed, ValidationError
from persisty.model import etag
from persisty.store import Edit


@stored(indexes=[Index("owner", "score")])
class Doc:
    id: str
    owner: str
    score: int = 0
    ratio: float = 0.0
    hits: int = 0
    title: str = ""
    meta: dict[str, Any] = dataclasses.field(default_factory=dict)
    tags: list[str] = dataclasses.field(default_factory=list)
    when: dt.datetime | None = None


@stored(indexes=[Index("email", unique=True)])
class Account:
    id: str
    email: str
    name: str = ""


class Recorder:
    """The commands sent from now on (after one patch loaded the script on the server)."""

    def __init__(self, db: RedisDatabase) -> None:
        warm = db.store(Doc)
        warm.create(Doc(id="~warm", owner="~"))
        warm.patch("~warm", {"title": "x"})
        warm.delete("~warm")
        self.names: list[str] = []
        original: Any = db.client.execute_command

        def record(*args: Any, **options: Any) -> Any:
            self.names.append(str(args[0]).upper())
            return original(*args, **options)

        db.client.execute_command = record  # type: ignore[method-assign]


TRICKY = Doc(
    id="d1",
    owner="ann",
    score=5,
    title='x","score":99,"y":"\\"}',
    meta={"score": 1, "nested": {"hits": [1, {"a": "]}"}]}, "title": "\u00e9\u2028"},
    tags=["a,b", '"score":', "{["],
)


def test_patch_is_one_script_call(db: RedisDatabase) -> None:
    store = db.store(Doc)
    store.create(TRICKY)
    rec = Recorder(db)
    new = store.patch("d1", {"score": 7, "title": "t\u00e9\n\"'"})
    assert rec.names == ["EVALSHA"]
    assert new == dataclasses.replace(TRICKY, score=7, title="t\u00e9\n\"'")
    assert store.read("d1") == new
    # the index moved with the score: the old entry is gone
    assert store.count((F.owner == "ann") & (F.score == 7)) == 1
    assert store.count((F.owner == "ann") & (F.score == 5)) == 0
    assert store.search(F.owner == "ann", order=[-F.score]).items == [new]


def test_patched_values_are_checked(db: RedisDatabase) -> None:
    store = db.store(Doc)
    store.create(TRICKY)
    with pytest.raises(ValidationError):
        store.patch("d1", {"score": "many"})
    with pytest.raises(ValidationError):
        store.patch("d1", {"nope": 1})
    with pytest.raises(NotFound):
        store.patch("missing", {"score": 1})
    assert store.read("d1") == TRICKY
    when = dt.datetime(2024, 5, 1, 12, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    new = store.patch("d1", {"when": when, "ratio": 0.1 + 0.2, "meta": {"b": 2, "a": [1.5]}})
    assert new.when == when and new.when.tzinfo is dt.UTC
    assert new.ratio == 0.1 + 0.2 and new.meta == {"a": [1.5], "b": 2}
    assert store.read("d1") == new


def test_etag_of_a_patched_item_is_the_stored_one(db: RedisDatabase) -> None:
    store = db.store(Doc)
    store.create(TRICKY)
    new = store.patch("d1", {"score": 8, "meta": {"z": 1, "a": 2}})
    with pytest.raises(PreconditionFailed):
        store.update(dataclasses.replace(new, title="old etag"), if_match=etag(TRICKY))
    # the conditional write fills the etag in (the content hash), then succeeds
    updated = store.update(dataclasses.replace(new, title="u"), if_match=etag(new))
    again = store.patch("d1", {"hits": Increment(3)})
    assert again.hits == 3 and again.title == "u"
    with pytest.raises(PreconditionFailed):
        store.delete("d1", if_match=etag(updated))
    store.delete("d1", if_match=etag(again))
    assert store.read("d1") is None


def test_commit_of_several_stores_after_a_patch(db: RedisDatabase) -> None:
    docs = db.store(Doc)
    docs.create(TRICKY)
    new = docs.patch("d1", {"score": 9})
    second = db.store(Post2)
    second.create(Post2(id="p"))
    results = db.commit(
        [
            (docs, Edit.update(dataclasses.replace(new, title="c"), if_match=etag(new))),
            (second, Edit.patch("p", {"n": 2})),
        ]
    )
    assert all(r.ok for r in results), results
    assert docs.read("d1").title == "c"  # type: ignore[union-attr]
    assert second.read("p").n == 2  # type: ignore[union-attr]


@stored
class Post2:
    id: str
    n: int = 0


def test_increments_are_native(db: RedisDatabase) -> None:
    store = db.store(Doc)
    store.create(Doc(id="c", owner="o", hits=2**40))
    rec = Recorder(db)
    for _ in range(3):
        last = store.patch("c", {"hits": Increment(-2)})
    assert rec.names == ["EVALSHA"] * 3
    assert last.hits == 2**40 - 6 and getattr(store, "retries") == 0  # noqa: B009
    assert store.read("c") == last
    # what the script does not add itself takes the read path, and is still exact
    assert store.patch("c", {"ratio": Increment(0.5)}).ratio == 0.5
    assert store.patch("c", {"score": Increment(4)}).score == 4  # indexed: in the script
    assert store.count((F.owner == "o") & (F.score == 4)) == 1
    big = store.patch("c", {"hits": 10**17})
    assert store.patch("c", {"hits": Increment(1)}).hits == big.hits + 1
    with pytest.raises(ValidationError):
        store.patch("c", {"title": Increment(1)})


def test_increments_of_indexed_values_move_the_entry(db: RedisDatabase) -> None:
    store = db.store(Doc)
    store.create(Doc(id="c", owner="o"))
    store.create(Doc(id="d", owner="o", score=50))
    rec = Recorder(db)
    seen = []
    for by in (4, 96, -100, -1, -999, 2000, -1000, 10**14, -(10**14) + 7):
        rec.names = []
        new = store.patch("c", {"score": Increment(by)})
        assert rec.names == ["EVALSHA"]
        seen.append(new.score)
        # the entry the script wrote is the one Python's encoding finds, in value order
        assert store.count((F.owner == "o") & (F.score == new.score)) == 1
        assert store.count(F.owner == "o") == 2
        below = store.count((F.owner == "o") & (F.score < 50))
        assert below == (1 if new.score < 50 else 0)
    assert seen == [4, 100, 0, -1, -1000, 1000, 0, 10**14, 7]
    assert [x.id for x in store.search(F.owner == "o", order=[-F.score]).items] == ["d", "c"]


def test_unique_indexes_take_the_read_path(db: RedisDatabase) -> None:
    store = db.store(Account)
    store.create(Account(id="a", email="a@x"))
    store.create(Account(id="b", email="b@x"))
    assert store.patch("a", {"name": "Ann"}).name == "Ann"  # one call: no unique value moves
    with pytest.raises(Exception, match="unique"):
        store.patch("a", {"email": "b@x"})
    assert store.patch("a", {"email": "c@x"}).email == "c@x"
    assert store.count(F.email == "c@x") == 1


async def test_async_patch(adb: AsyncRedisDatabase) -> None:
    store = adb.store(Doc)
    await store.create(TRICKY)
    new = await store.patch("d1", {"score": 1, "hits": Increment(1)})
    assert (new.score, new.hits) == (1, 1)
    assert await store.read("d1") == new
    done = await store.update(dataclasses.replace(new, title="a"), if_match=etag(new))
    assert done.title == "a"


def test_a_document_with_more_than_the_model_keeps_etags_right(db: RedisDatabase) -> None:
    store = db.store(Doc)
    store.create(Doc(id="d", owner="o"))
    client: Any = db.client
    name = getattr(store, "layout").item_key(b"d")  # noqa: B009  (the item's Redis key)
    tag, _, doc = client.get(name).partition(b"|")
    client.set(name, tag + b"|" + doc.replace(b'{"id"', b'{"gone":1,"id"', 1))
    new = store.patch("d", {"title": "t"})  # the attribute a model no longer has stays
    assert new == Doc(id="d", owner="o", title="t")
    assert store.update(dataclasses.replace(new, title="u"), if_match=etag(new)).title == "u"
