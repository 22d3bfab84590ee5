"""The options of ``app`` and ``router``: one typed object (``ServeOptions``) behind the
keyword arguments, which stay as they were."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from starlette.testclient import TestClient
from tests.serve.serve_models import Note

import persisty.aio
from persisty.serve import ServeOptions, app, router
from persisty.serve._options import RouterKeywords, ServeKeywords


def test_the_keywords_are_the_fields_of_the_options() -> None:
    fields = {f.name for f in dataclasses.fields(ServeOptions)}
    assert set(ServeKeywords.__optional_keys__) == fields
    assert set(RouterKeywords.__optional_keys__) < fields


def test_keywords_reach_the_api(tmp_path: Any) -> None:
    db = persisty.aio.connect("memory://")
    asgi = app(db, [Note], prefix="/v1/", max_limit=7, title="Notes", graphql=False)
    api = asgi.state.persisty
    assert (api.prefix, api.max_limit, api.title) == ("/v1", 7, "Notes")
    with TestClient(asgi) as c:
        assert c.get("/v1/note?limit=8").status_code == 422
        assert c.get("/v1/note?limit=7").status_code == 200
        assert c.post("/graphql", json={"query": "{ __typename }"}).status_code == 404


def test_unknown_keywords_are_refused() -> None:
    db = persisty.aio.connect("memory://")
    with pytest.raises(TypeError, match="colour"):
        app(db, [Note], colour="red")  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="cors"):
        router(db, [Note], cors=True)  # type: ignore[call-arg]
