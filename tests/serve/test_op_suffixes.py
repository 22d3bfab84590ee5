"""One rule for operator suffixes in REST and GraphQL: ``attr__op`` (``owner__ne``); GraphQL
still accepts its earlier ``attr_op`` names, marked deprecated."""

from __future__ import annotations

from pathlib import Path

from starlette.testclient import TestClient

import persisty
from persisty import stored
from persisty.serve import app


@stored
class Memo:
    id: str
    owner: str
    rank: int = 0


def test_rest_and_graphql_share_the_double_underscore_suffix(tmp_path: Path) -> None:
    db = persisty.aio.connect(f"sqlite:///{tmp_path}/m.db")
    with TestClient(app(db, [Memo])) as client:
        for i, owner in enumerate(["ann", "bob", "cy"]):
            assert (
                client.post(
                    "/api/memo", json={"id": f"m{i}", "owner": owner, "rank": i}
                ).status_code
                == 201
            )
        rest = client.get("/api/memo?owner__ne=ann&rank__gte=1&order=id").json()
        assert [m["id"] for m in rest["items"]] == ["m1", "m2"]
        for ne, gte in (("owner__ne", "rank__gte"), ("owner_ne", "rank_gte")):
            query = (
                f'{{ memoSearch(filter: {{{ne}: "ann", {gte}: 1}}, order: ["id"]) '
                "{ items { id } } }"
            )
            r = client.post("/graphql", json={"query": query})
            assert r.status_code == 200, r.text
            assert [m["id"] for m in r.json()["data"]["memoSearch"]["items"]] == ["m1", "m2"]
        fields = client.post(
            "/graphql",
            json={
                "query": '{ __type(name: "MemoFilter") { '
                "inputFields(includeDeprecated: true) { name isDeprecated "
                "deprecationReason } } }"
            },
        ).json()["data"]["__type"]["inputFields"]
        by_name = {f["name"]: f for f in fields}
        assert by_name["owner__ne"]["isDeprecated"] is False
        assert by_name["owner_ne"]["isDeprecated"] is True
        assert by_name["owner_ne"]["deprecationReason"] == "use owner__ne"
