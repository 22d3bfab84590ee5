"""How much the Redis backend asks of the server: indexed searches read about a page of
index entries, counts are one command, writes are one script call, batches are pipelined.
(Commands are recorded on the real client; nothing is mocked.)"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from persisty import F, Index, stored
from persisty.backends.redis import RedisDatabase
from persisty.store import Edit, Store


@stored(indexes=[Index("owner", "score")])
class Post:
    id: str
    owner: str
    score: int = 0
    title: str = ""


class Recorder:
    def __init__(self, db: RedisDatabase) -> None:
        self.calls: list[tuple[str, int]] = []
        original: Callable[..., Any] = db.client.execute_command

        def record(*args: Any, **options: Any) -> Any:
            self.calls.append((str(args[0]).upper(), len(args) - 1))
            return original(*args, **options)

        db.client.execute_command = record  # type: ignore[method-assign]

    def names(self) -> list[str]:
        return [c for c, _ in self.calls]


@pytest.fixture
def posts(db: RedisDatabase) -> Iterator[tuple[Store[Post], Recorder]]:
    store = db.store(Post)
    store.edit_batch(
        [Edit.create(Post(id=f"p{i:03d}", owner=f"o{i % 4}", score=i % 50)) for i in range(400)]
    )
    yield store, Recorder(db)


def test_indexed_search_reads_about_one_page(posts: tuple[Store[Post], Recorder]) -> None:
    store, rec = posts
    page = store.search(F.owner == "o1", order=[-F.score], limit=10)
    assert len(page.items) == 10
    assert rec.names() == ["ZREVRANGEBYLEX", "MGET"]
    assert rec.calls[1][1] <= 10 + 2  # the page, its next item and the rest of a tie
    rec.calls.clear()
    store.search(F.owner == "o1", order=[-F.score], limit=10, page_key=page.next_page_key)
    assert rec.names() == ["ZREVRANGEBYLEX", "MGET"]


def test_count_is_one_command(posts: tuple[Store[Post], Recorder]) -> None:
    store, rec = posts
    assert store.count(F.owner == "o2") == 100
    assert store.count() == 400
    assert store.count((F.owner == "o2") & (F.score >= 40)) == 20
    assert rec.names() == ["ZLEXCOUNT", "ZCARD", "ZLEXCOUNT"]


def test_writes_are_one_script_call(posts: tuple[Store[Post], Recorder]) -> None:
    store, rec = posts
    store.update(Post(id="p001", owner="o9", score=3))
    store.delete("p002")
    results = store.edit_batch([Edit.create(Post(id=f"n{i}", owner="x")) for i in range(300)])
    assert all(r.ok for r in results)
    assert rec.names() == ["EVALSHA", "EVALSHA", "EVALSHA"]


def test_put_is_one_script_call(posts: tuple[Store[Post], Recorder]) -> None:
    store, rec = posts
    assert store.put(Post(id="p001", owner="o7", score=9)).owner == "o7"  # replaces
    assert store.put(Post(id="fresh", owner="o7", score=8)).score == 8  # creates
    assert rec.names() == ["EVALSHA", "EVALSHA"]
    assert store.read("p001") == Post(id="p001", owner="o7", score=9)
    assert store.read("fresh") == Post(id="fresh", owner="o7", score=8)
    assert store.count(F.owner == "o7") == 2  # the index follows the replaced item
    assert store.count(F.owner == "o1") == 99


def test_reads_are_batched(posts: tuple[Store[Post], Recorder]) -> None:
    store, rec = posts
    store.read("p001")
    store.read_batch([f"p{i:03d}" for i in range(300)])
    assert rec.names() == ["GET", "MGET"]
