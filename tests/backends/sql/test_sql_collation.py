"""Property tests: on every SQL engine, string comparison and ordering are Python's (code
point, case-sensitive, no padding), and the i-ops agree with ``str.lower`` on ordinary text."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.conftest import MYSQL_URL, POSTGRES_URL

import persisty
from persisty import F
from persisty.backends.sql import SqlDatabase
from persisty.model import Index, stored
from persisty.store import Edit

TEXT = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=8)
# letters whose lowercase is the same in Python, ICU, MariaDB and SQLite
PLAIN = st.text(st.sampled_from("aAbBzZ äÄöÖüÜ_%!é"), max_size=6)


@stored(name="words", indexes=[Index("word")])
class Word:
    """A string key and an indexed string."""

    id: str
    word: str
    text: str = ""


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"], scope="module")
def db(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    url = {
        "sqlite": f"sqlite:///{tmp_path_factory.mktemp('coll') / 'c.db'}",
        "postgresql": POSTGRES_URL,
        "mariadb": MYSQL_URL,
    }[request.param]
    database = persisty.connect(url, namespace="t" + uuid.uuid4().hex[:10])
    assert isinstance(database, SqlDatabase)
    yield database
    database.drop_tables()
    database.close()


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(words=st.lists(TEXT, min_size=1, max_size=12), probe=TEXT)
def test_order_and_comparison_are_code_point(db: SqlDatabase, words: list[str], probe: str) -> None:
    store = db.store(Word)
    store.delete_all(None)
    store.edit_batch([Edit.create(Word(id=f"w{i}", word=w, text=w)) for i, w in enumerate(words)])
    got = [w.word for w in store.search(order=[+F.word], limit=100).items]
    assert got == sorted(words)
    by_text = [w.text for w in store.search(order=[-F.text], limit=100).items]
    assert by_text == sorted(words, reverse=True)
    assert store.count(F.word < probe) == sum(w < probe for w in words)
    assert store.count(F.word == probe) == words.count(probe)
    assert store.count(F.text.contains(probe)) == sum(probe in w for w in words)
    assert store.count(F.text.startswith(probe)) == sum(w.startswith(probe) for w in words)


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(words=st.lists(PLAIN, min_size=1, max_size=12), probe=PLAIN)
def test_case_insensitive_ops(db: SqlDatabase, words: list[str], probe: str) -> None:
    store = db.store(Word)
    store.delete_all(None)
    store.edit_batch([Edit.create(Word(id=f"w{i}", word=w, text=w)) for i, w in enumerate(words)])
    low = probe.lower()
    assert store.count(F.text.icontains(probe)) == sum(low in w.lower() for w in words)
    assert store.count(F.text.istartswith(probe)) == sum(w.lower().startswith(low) for w in words)
    assert store.count(F.text.iendswith(probe)) == sum(w.lower().endswith(low) for w in words)
