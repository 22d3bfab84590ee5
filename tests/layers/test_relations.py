"""The relations layer: BelongsTo/HasMany/HasOne loading in one batched call per relation,
foreign keys checked on writes, and block / cascade / set_null on every delete path; on
memory and SQLite, sync and async."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from tests.conftest import MYSQL_URL, POSTGRES_URL, REDIS_URL

import persisty
import persisty.aio
from persisty import Attr, F, stored
from persisty.errors import Conflict, NotFound, PreconditionFailed, ValidationError
from persisty.layers import BelongsTo, HasMany, HasOne, observed, related, relations_of
from persisty.store import Edit, WrappedStore


@stored
class Author:
    id: str
    name: str = ""
    books = HasMany("Book", "author_id", on_delete="cascade")
    bio = HasOne("Bio", "author_id", on_delete="cascade")
    fans = HasMany("Fan", "favorite_id")


@stored
class Book:
    id: uuid.UUID = Attr(generated="uuid", default=None)  # what a bare UUID key gets
    title: str = ""
    author_id: str | None = None
    author = BelongsTo(Author, "author_id")
    reviews = HasMany("Review", "book_id", on_delete="set_null")


@stored
class Review:
    id: int
    book_id: uuid.UUID | None = None
    stars: int = 0
    book = BelongsTo(Book, "book_id")


@stored
class Bio:
    id: str
    author_id: str
    text: str = ""


@stored
class Fan:
    id: str
    favorite_id: str | None = None  # no on_delete declared anywhere: "block"
    favorite = BelongsTo(Author, "favorite_id")


@stored
class Folder:
    id: str
    parent_id: str | None = None
    parent = BelongsTo("Folder", "parent_id", on_delete="cascade")
    children = HasMany("Folder", "parent_id")


class Counting(WrappedStore[Any]):
    """Counts the calls that reach the backend."""

    def __init__(self, inner: Any) -> None:
        super().__init__(inner)
        self.calls: list[str] = []

    def read(self, key: str) -> Any:
        self.calls.append("read")
        return super().read(key)

    def read_batch(self, keys: Any) -> Any:
        self.calls.append("read_batch")
        return super().read_batch(keys)

    def search(self, *args: Any, **kwargs: Any) -> Any:
        self.calls.append("search")
        return super().search(*args, **kwargs)


@pytest.fixture(params=["memory", "sqlite", "file", "redis", "postgresql", "mysql"])
def db(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[Any]:
    """Integrity is the layer's job, so it holds on every backend: run on each engine."""
    namespace = "rel" + uuid.uuid4().hex[:10]
    url = {
        "memory": "memory://",
        "sqlite": "sqlite://",
        "file": f"file://{tmp_path}",
        "redis": REDIS_URL,
        "postgresql": POSTGRES_URL,
        "mysql": MYSQL_URL,
    }[request.param]
    database = persisty.connect(url, namespace=namespace)
    try:
        yield database
    finally:
        if hasattr(database, "drop_tables"):
            database.drop_tables()
        elif request.param == "redis":
            database.drop()
        database.close()


def _library(db: Any) -> tuple[Any, Any, Any]:
    authors = related(db.store(Author), db)
    books = related(db.store(Book), db)
    reviews = related(db.store(Review), db)
    for a in ("a1", "a2", "a3"):
        authors.create(Author(id=a, name=a.upper()))
    return authors, books, reviews


def test_declarations() -> None:
    rel = relations_of(Book)
    assert set(rel) == {"author", "reviews"}
    assert rel["author"].target is Author and rel["reviews"].target is Review
    assert relations_of(Folder)["parent"].target is Folder
    assert Book.author is rel["author"]
    with pytest.raises(ValueError):
        BelongsTo(Author, "x", on_delete="explode")  # type: ignore[arg-type]


def test_load_is_one_batched_call_per_relation(db: Any) -> None:
    authors, books, reviews = _library(db)
    made = [
        books.create(Book(title=f"b{i}", author_id=f"a{i % 3 + 1}" if i % 4 else None))
        for i in range(30)
    ]
    for i, b in enumerate(made[:10]):
        reviews.create(Review(id=i, book_id=b.id, stars=i % 5))
    counted_authors = Counting(db.store(Author))
    counted_books = Counting(db.store(Book))
    counted_reviews = Counting(db.store(Review))
    stores = {Author: counted_authors, Book: counted_books, Review: counted_reviews}
    loader = related(db.store(Book), stores)
    got = loader.load(made, "author")
    assert counted_authors.calls == ["read_batch"]  # 30 books, 1 call
    assert [None if a is None else a.id for a in got] == [b.author_id for b in made]
    lists = loader.load(made, "reviews")
    assert counted_reviews.calls == ["search"]
    assert [sorted(r.id for r in rs) for rs in lists] == [[i] if i < 10 else [] for i in range(30)]
    by_author = related(db.store(Author), stores).load(authors.search().items, "books")
    assert counted_books.calls == ["search"]
    assert [len(bs) for bs in by_author] == [
        sum(1 for b in made if b.author_id == a) for a in ("a1", "a2", "a3")
    ]
    assert loader.load([], "author") == []
    with pytest.raises(ValidationError):
        loader.load(made, "nope")


def test_has_one(db: Any) -> None:
    authors, _, _ = _library(db)
    bios = related(db.store(Bio), db)
    bios.create(Bio(id="x", author_id="a2", text="hi"))
    got = authors.load(authors.search().items, "bio")
    assert [None if b is None else b.text for b in got] == [None, "hi", None]


def test_foreign_keys_must_exist(db: Any) -> None:
    _, books, reviews = _library(db)
    with pytest.raises(ValidationError) as e:
        books.create(Book(title="x", author_id="ghost"))
    assert e.value.field == "author_id"
    b = books.create(Book(title="ok", author_id="a1"))
    with pytest.raises(ValidationError):
        books.patch(str(b.id), {"author_id": "ghost"})
    with pytest.raises(ValidationError):
        books.update_all(None, {"author_id": "ghost"})
    results = books.edit_batch(
        [
            Edit.create(Book(title="y", author_id="a2")),
            Edit.create(Book(title="z", author_id="nobody")),
        ]
    )
    assert [r.code for r in results] == ["aborted", "validation_error"]
    assert results[1].field == "author_id"
    assert books.count() == 1
    results = books.edit_batch(
        [
            Edit.create(Book(title="y", author_id="a2")),
            Edit.create(Book(title="z", author_id="nobody")),
        ],
        atomic=False,
    )
    assert [r.code for r in results] == [None, "validation_error"]
    assert books.count() == 2
    books.delete(str(results[0].item.id))
    books.patch(str(b.id), {"author_id": None})
    with pytest.raises(ValidationError):
        reviews.create(Review(id=1, book_id=uuid.uuid4()))


def test_cascade_and_set_null(db: Any) -> None:
    authors, books, reviews = _library(db)
    kept = books.create(Book(title="kept", author_id="a2"))
    doomed = [books.create(Book(title=f"d{i}", author_id="a1")) for i in range(3)]
    reviews.create(Review(id=1, book_id=doomed[0].id))
    reviews.create(Review(id=2, book_id=kept.id))
    related(db.store(Bio), db).create(Bio(id="bio1", author_id="a1"))
    authors.delete("a1")
    assert authors.read("a1") is None
    assert [b.title for b in books.search().items] == ["kept"]  # cascaded
    assert db.store(Bio).count() == 0  # HasOne cascade
    assert reviews.read("1").book_id is None  # set_null through the cascade
    assert reviews.read("2").book_id == kept.id
    with pytest.raises(NotFound):
        authors.delete("a1")


def test_block(db: Any) -> None:
    authors, _, _ = _library(db)
    fans = related(db.store(Fan), db)
    fans.create(Fan(id="f", favorite_id="a3"))
    with pytest.raises(Conflict) as e:
        authors.delete("a3")
    assert e.value.field == "favorite_id" and "fan" in e.value.message
    assert authors.read("a3") is not None
    results = authors.edit_batch([Edit.delete("a2"), Edit.delete("a3")])
    assert [r.code for r in results] == ["conflict", "conflict"]
    assert authors.count() == 3
    with pytest.raises(Conflict):
        authors.delete_all(None)
    assert authors.count() == 3  # blocked before anything was deleted
    fans.patch("f", {"favorite_id": None})
    assert authors.delete_all(F.id != "a1") == 2


def test_conditions_checked_before_cascading(db: Any) -> None:
    authors, books, _ = _library(db)
    books.create(Book(title="t", author_id="a1"))
    with pytest.raises(PreconditionFailed):
        authors.delete("a1", if_match="stale")
    with pytest.raises(PreconditionFailed):
        authors.delete("a1", precondition=F.name == "nobody")
    assert books.count() == 1  # nothing cascaded
    authors.delete("a1", precondition=F.name == "A1")
    assert books.count() == 0


def test_tree_cascades_in_one_atomic_batch(db: Any) -> None:
    folders = related(db.store(Folder), db)
    folders.create(Folder(id="root"))
    for i in range(3):
        folders.create(Folder(id=f"c{i}", parent_id="root"))
        folders.create(Folder(id=f"g{i}", parent_id=f"c{i}"))
    folders.create(Folder(id="other"))
    counted = Counting(db.store(Folder))
    batches: list[int] = []
    original = counted.edit_batch

    def edit_batch(edits: Any, atomic: bool = True) -> Any:
        batches.append(len(edits))
        assert atomic
        return original(edits, atomic)

    counted.edit_batch = edit_batch  # type: ignore[method-assign]
    related(counted, {Folder: counted}).delete("root")
    assert batches == [7]  # root, 3 children, 3 grandchildren: one atomic batch
    assert [f.id for f in folders.search().items] == ["other"]
    # a tree's own items created in one batch may refer to each other
    results = folders.edit_batch(
        [Edit.create(Folder(id="n1")), Edit.create(Folder(id="n2", parent_id="n1"))]
    )
    assert all(r.ok for r in results)


def test_stacks_with_events(db: Any) -> None:
    seen: list[tuple[str, str]] = []
    book_store = observed(db.store(Book))
    book_store.on_delete(lambda ch: seen.append((ch.kind, ch.old.title)))
    stores = {
        Author: db.store(Author),
        Book: book_store,
        Review: db.store(Review),
        Bio: db.store(Bio),
        Fan: db.store(Fan),
    }
    authors = related(db.store(Author), stores)
    authors.create(Author(id="a1"))
    related(book_store, stores).create(Book(title="t", author_id="a1"))
    authors.delete("a1")
    assert seen == [("delete", "t")]  # the cascade went through the events layer


async def test_async() -> None:
    db = persisty.aio.connect("sqlite://")
    authors = related(db.store(Author), db)
    books = related(db.store(Book), db)
    await authors.create(Author(id="a1"))
    b = await books.create(Book(title="t", author_id="a1"))
    assert [a.id for a in await books.load([b], "author")] == ["a1"]
    assert [[x.title for x in bs] for bs in await authors.load([Author(id="a1")], "books")] == [
        ["t"]
    ]
    with pytest.raises(ValidationError):
        await books.create(Book(author_id="zzz"))
    await authors.delete("a1")
    assert await books.count() == 0
    await db.close()
