"""Who may define, change and use runtime-defined stores: the admin scope for changes, the
creator owns a definition and shares it by scope, and each definition's data policy."""

from __future__ import annotations

from typing import Any

import pytest

import persisty
from persisty import F
from persisty.dynamic import catalog
from persisty.errors import Forbidden, NotFound
from persisty.layers import Principal

ANN = Principal("ann", scopes={"admin", "staff"})
ZED = Principal("zed", scopes={"admin"})
BOB = Principal("bob", scopes={"user"})
CY = Principal("cy", scopes={"sales"})
SPEC: dict[str, Any] = {
    "name": "leads",
    "attrs": {"id": "str", "owner": "str", "note": {"type": "str", "optional": True}},
    "policy": {"kind": "owner", "attr": "owner"},
}


def test_changes_need_the_admin_scope_and_ownership() -> None:
    cat = catalog(persisty.connect("memory://"))
    with pytest.raises(Forbidden):
        cat.as_principal(BOB).define(SPEC)
    assert cat.list() == []
    d = cat.as_principal(ANN).define(SPEC)
    assert d.owner == "ann"
    wider = {**SPEC, "attrs": {**SPEC["attrs"], "n": {"type": "int", "default": 0}}}
    with pytest.raises(Forbidden):  # no admin scope: whatever the name
        cat.as_principal(BOB).alter("leads", wider)
    with pytest.raises(Forbidden):
        cat.as_principal(BOB).alter("no_such_store", wider)
    with pytest.raises(Forbidden):  # an admin who does not own it
        cat.as_principal(ZED).alter("leads", wider)
    with pytest.raises(Forbidden):
        cat.as_principal(ZED).drop("leads")
    cat.as_principal(ANN).alter("leads", wider)
    assert cat.get("leads").version == 2


def test_the_owner_shares_by_scope_and_the_policy_applies() -> None:
    cat = catalog(persisty.connect("memory://"))
    cat.as_principal(ANN).define(SPEC)
    assert [d.name for d in cat.as_principal(CY).list()] == []
    with pytest.raises(NotFound):
        cat.as_principal(CY).store("leads")
    with pytest.raises(NotFound):  # invisible to cy: not even named
        cat.as_principal(CY).share("leads", ["sales"])
    cat.as_principal(ANN).share("leads", ["sales"])
    assert [d.name for d in cat.as_principal(CY).list()] == ["leads"]
    mine = cat.as_principal(CY).store("leads")
    mine.create({"id": "l1", "owner": "cy"})
    with pytest.raises(Forbidden):
        mine.create({"id": "l2", "owner": "ann"})  # the owner policy: only one's own
    cat.store("leads").create({"id": "l3", "owner": "ann"})  # the trusted process
    assert [x.id for x in mine.search().items] == ["l1"]
    assert mine.count(F.owner == "ann") == 0
    assert cat.store("leads").count() == 2
    with pytest.raises(NotFound):
        cat.as_principal(BOB).store("leads")


def test_read_only_and_scoped_policies() -> None:
    cat = catalog(persisty.connect("memory://"))
    cat.define(
        {
            "name": "prices",
            "attrs": {"id": "str", "amount": "int"},
            "policy": {"kind": "scoped", "scopes": {"admin": "allow", "user": "read_only"}},
        }
    )
    cat.store("prices").create({"id": "p", "amount": 3})
    cat.as_principal(ANN).store("prices").create({"id": "q", "amount": 4})
    reader = cat.as_principal(BOB)
    with pytest.raises(NotFound):
        reader.store("prices")  # the definition is not shared
    cat.share("prices", ["user"])
    prices = reader.store("prices")
    assert prices.count() == 2
    with pytest.raises(Forbidden):
        prices.create({"id": "r", "amount": 1})
