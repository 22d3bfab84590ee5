"""Issue 10 ("Done when"): a hypothesis property over *generated* models. Each example
draws a model (its attributes, their types, which are ``Attr(readable=False)``), policies per
principal scope (which readable attributes each may see), a principal, a stack for the
Python surface (``secured`` alone, over ``cached``, over an ``encrypted`` store) and a list of
requests: filters with every operator on every attribute, orders, free text, page walks,
counts, reads with their ETags and ``If-None-Match``, batch reads, GraphQL searches. Two
worlds hold the same items except for the values the principal may not read; every output
(status codes, bodies, counts, headers, page keys, ETags, error messages) must be the same in
both."""

from __future__ import annotations

import itertools
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

import persisty
import persisty.aio
from persisty import Attr, F, stored
from persisty.errors import PersistyError
from persisty.layers import KeyRing, Policy, Principal, cached, encrypted, secured
from persisty.model import meta_of
from persisty.serve import JWTAuth, app

AUTH = JWTAuth(secret="generated-hidden-attribute-tests-0123456789")
SECRET = b"g" * 32  # one database secret for both worlds: their outputs may be compared
KEY = b"e" * 32
NAMES = ["alpha", "beta", "gamma", "delta", "eps"]
STRS = ["", "a", "ab", "abc", "zz", "S3", "4821", "x"]
OPS = ["eq", "ne", "lt", "gte", "contains", "icontains", "startswith", "exists", "in"]
_counter = itertools.count()


@st.composite
def models(draw: Any) -> tuple[type[Any], dict[str, str], set[str]]:
    """A ``@stored`` class with 2-5 attributes beside ``id`` (str or int), some of them
    ``readable=False``; returns it, the kinds by attribute and the unreadable ones."""
    names = draw(st.lists(st.sampled_from(NAMES), min_size=2, max_size=5, unique=True))
    kinds = {n: draw(st.sampled_from(["str", "int"])) for n in names}
    unreadable = set(draw(st.lists(st.sampled_from(names), max_size=len(names) - 1, unique=True)))
    ns: dict[str, Any] = {"__annotations__": {"id": str}}
    for n in names:
        ns["__annotations__"][n] = str if kinds[n] == "str" else int
        default: Any = "" if kinds[n] == "str" else 0
        ns[n] = Attr(default=default, readable=False) if n in unreadable else default
    name = f"gen{next(_counter)}"
    return stored(name=name)(type(name.capitalize(), (), ns)), kinds, unreadable


def _value(kind: str) -> Any:
    return st.sampled_from(STRS) if kind == "str" else st.integers(0, 4)


@st.composite
def cases(draw: Any) -> dict[str, Any]:
    cls, kinds, unreadable = draw(models())
    readable_attrs = [n for n in kinds if n not in unreadable]
    # each scope's policy sees a subset of the readable attributes (None: all of them)
    policies = {
        scope: draw(st.one_of(st.none(), st.lists(st.sampled_from(readable_attrs), unique=True)))
        for scope in ("user", "staff")
    }
    scope = draw(st.sampled_from(["user", "staff"]))
    sees = set(readable_attrs if policies[scope] is None else policies[scope])
    hidden = [n for n in kinds if n not in sees]
    n = draw(st.integers(1, 5))
    base = [{"id": f"k{i}", **{a: draw(_value(kinds[a])) for a in kinds}} for i in range(n)]
    other = [{**it, **{a: draw(_value(kinds[a])) for a in hidden}} for it in base]
    hidden_values = sorted({str(it[a]) for it in base for a in hidden if it[a] not in ("", 0)})
    probe = st.one_of(st.sampled_from(STRS), st.sampled_from(hidden_values or [""]))
    calls = []
    for _ in range(draw(st.integers(1, 6))):
        attr = draw(st.sampled_from(list(kinds)))
        calls.append(
            {
                "kind": draw(
                    st.sampled_from(
                        ["search", "count", "q", "read", "walk", "batch", "gql", "gqlq", "py"]
                    )
                ),
                "attr": attr,
                "op": draw(st.sampled_from(OPS)),
                "value": draw(probe) if kinds[attr] == "str" else draw(st.integers(0, 4)),
                "text": draw(probe),
                "order": draw(st.sampled_from([None, *kinds, *(f"-{a}" for a in kinds)])),
                "limit": draw(st.integers(1, 3)),
                "key": draw(st.sampled_from(["k0", "k1", "k4", "nope"])),
            }
        )
    return {
        "cls": cls,
        "kinds": kinds,
        "policies": policies,
        "scope": scope,
        "worlds": (base, other),
        "calls": calls,
        "stack": draw(st.sampled_from(["secured", "secured+cached", "secured+encrypted"])),
    }


def _policy(readable: list[str] | None) -> Policy:
    return Policy.read_only() if readable is None else Policy(readable=readable)


def _world(case: dict[str, Any], items: list[dict[str, Any]]) -> tuple[Any, Any, Any]:
    cls = case["cls"]
    scoped = Policy.scoped({s: _policy(r) for s, r in case["policies"].items()})
    db = persisty.aio.connect("memory://", secret=SECRET)
    asgi = app(db, [cls], auth=AUTH, policies={cls: scoped})
    raw = persisty.connect("memory://", secret=SECRET).store(cls)
    for it in items:
        raw.create(cls(**it))
    inner: Any = raw
    if case["stack"] == "secured+cached":
        inner = cached(raw)
    elif case["stack"] == "secured+encrypted" and any(k == "str" for k in case["kinds"].values()):
        fields = [a for a, k in case["kinds"].items() if k == "str"]
        enc = encrypted(
            persisty.connect("memory://", secret=SECRET).store(cls),
            fields=fields,
            keys=KeyRing({"k1": KEY}, current="k1"),
        )
        for it in items:
            enc.create(cls(**it))
        inner = enc
    principal = Principal("ann", {case["scope"]})
    py = secured(inner, scoped, principal)

    async def load() -> None:
        store = db.store(cls)
        for it in items:
            await store.create(cls(**it))

    return asgi, load, py


def _gql_type(kind: str, op: str) -> str:
    if op == "exists":
        return "Boolean"
    t = "String" if kind == "str" else "Int"
    return f"[{t}]" if op == "in" else t


_GQL_OP = {
    "eq": "",
    "ne": "_ne",
    "lt": "_lt",
    "gte": "_gte",
    "contains": "_contains",
    "icontains": "_icontains",
    "startswith": "_startswith",
    "exists": "_exists",
    "in": "_in",
}
_PY_OP = {
    "eq": "__eq__",
    "ne": "__ne__",
    "lt": "__lt__",
    "gte": "__ge__",
    "contains": "contains",
    "icontains": "icontains",
    "startswith": "startswith",
    "in": "in_",
}


def _observe(case: dict[str, Any], client: Any, py: Any, call: dict[str, Any]) -> Any:
    cls, kinds = case["cls"], case["kinds"]
    path = f"/api/{meta_of(cls).name}"
    h = {"Authorization": "Bearer " + AUTH.issue("ann", [case["scope"]])}
    attr, op, v, kind = call["attr"], call["op"], call["value"], call["kind"]
    if kind in ("search", "count", "walk"):
        params: dict[str, Any] = {f"{attr}__{op}": "true" if op == "exists" else v}
        if kind != "count":
            params["limit"] = call["limit"]
            if call["order"]:
                params["order"] = call["order"]
        seen = []
        for _ in range(4 if kind == "walk" else 1):
            r = client.get(path + ("/_count" if kind == "count" else ""), params=params, headers=h)
            seen.append((r.status_code, r.text, r.headers.get("etag")))
            nxt = r.json().get("next_page_key") if r.status_code == 200 else None
            if not nxt or kind != "walk":
                break
            params["page_key"] = nxt
        return seen
    if kind == "q":
        r = client.get(path, params={"q": call["text"], "order": "id"}, headers=h)
        return r.status_code, r.text
    if kind == "read":
        r = client.get(f"{path}/{call['key']}", headers=h)
        tag = r.headers.get("etag")
        again = client.get(f"{path}/{call['key']}", headers={**h, "If-None-Match": tag or "x"})
        return r.status_code, r.text, tag, again.status_code, again.headers.get("etag")
    if kind == "batch":
        r = client.post(f"{path}/_batch/read", json={"keys": [call["key"], "k0"]}, headers=h)
        return r.status_code, r.text
    if kind in ("gql", "gqlq"):
        field = meta_of(cls).name + "Search"
        readable = [a.name for a in meta_of(cls).attrs if a.readable and a.name != "id"]
        if kind == "gqlq":
            filt, decl, variables = "{q: $v}", "$v: String", {"v": call["text"]}
        else:
            filt = "{" + attr + _GQL_OP[op] + ": $v}"
            decl = "$v: " + _gql_type(kinds[attr], op)
            variables = {"v": True if op == "exists" else [v] if op == "in" else v}
        q = (
            f"query({decl}) {{ {field}(filter: {filt}, limit: {call['limit']}) "
            f"{{ items {{ id {' '.join(readable)} _etag }} next_page_key }} }}"
        )
        r = client.post("/graphql", json={"query": q, "variables": variables}, headers=h)
        return r.status_code, r.text
    try:  # the Python surface: the secured stack
        f = (
            F[attr].exists()
            if op == "exists"
            else getattr(F[attr], _PY_OP[op])([v] if op == "in" else v)
        )
        page = py.search(f | F.query(call["text"]), order=call["order"], limit=call["limit"])
        found = py.read(call["key"])
        return (
            [repr(i) for i in page.items],
            page.next_page_key,
            py.count(F.query(call["text"])),
            repr(found),
        )
    except PersistyError as e:
        return type(e).__name__, e.field, e.message


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(case=cases())
def test_no_output_depends_on_a_value_the_caller_may_not_read(case: dict[str, Any]) -> None:
    a_items, b_items = case["worlds"]
    a_app, a_load, a_py = _world(case, a_items)
    b_app, b_load, b_py = _world(case, b_items)
    with TestClient(a_app) as a, TestClient(b_app) as b:
        a.portal.call(a_load)  # type: ignore[union-attr]
        b.portal.call(b_load)  # type: ignore[union-attr]
        for call in case["calls"]:
            seen_a = _observe(case, a, a_py, call)
            seen_b = _observe(case, b, b_py, call)
            assert seen_a == seen_b, (call, case["policies"], case["scope"], case["stack"])
