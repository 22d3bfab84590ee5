"""The access-control layer: ready policies, hidden and locked attributes, batches, and a
property test that no principal observes or changes what its policy excludes."""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import persisty
import persisty.aio
from persisty.errors import Forbidden, NotFound, PersistyError, PreconditionFailed, ValidationError
from persisty.layers import Policy, Principal, SecuredStore, cached, secured
from persisty.model import etag, meta_of
from persisty.query import ALL, F, Filter, compile_filter, validate_filter
from persisty.store import Edit, Store
from persisty.testing.models import Item

ANN = Principal("ann", scopes={"user"})
BOB = Principal("bob", scopes=["user"])
ITEM = meta_of(Item)


def _raw() -> Store[Item]:
    return persisty.connect("memory://").store(Item)


def test_principal() -> None:
    assert Principal("x", "a b").scopes == {"a", "b"}
    with pytest.raises(ValidationError):
        Principal("")
    with pytest.raises(ValidationError):
        secured(_raw(), Policy.owner(), "ann")  # type: ignore[call-overload]  # a str, on purpose
    with pytest.raises(ValidationError):
        secured(_raw(), "owner", ANN)  # type: ignore[call-overload]  # a str, on purpose


def test_owner_policy() -> None:
    raw = _raw()
    ann = secured(raw, Policy.owner("owner"), ANN)
    bob = secured(raw, Policy.owner("owner"), BOB)
    with pytest.raises(Forbidden) as refused:  # the owner is the principal, nobody else
        ann.create(Item(owner="someone else", title="a"))
    assert refused.value.field == "owner"
    # a mapping (the secured layer takes one, beyond the typed T); owner left out: filled in
    # from the principal
    a = ann.create({"title": "a"})  # type: ignore[arg-type]
    assert a.owner == "ann"
    b = bob.create(Item(owner="bob", title="b"))
    ka, kb = ann.key_of(a), bob.key_of(b)
    assert ann.read(kb) is None and ann.read(ka) == a
    assert ann.read_batch([ka, kb]) == [a, None]
    assert [i.title for i in ann.search().items] == ["a"]
    assert ann.count() == 1 and bob.count() == 1 and raw.count() == 2
    assert ann.count(F.title == "b") == 0
    # another's item behaves exactly like a missing one
    ghost = str(uuid.uuid4())
    for key in (kb, ghost):
        with pytest.raises(NotFound) as e:
            ann.patch(key, {"title": "x"})
        assert str(e.value) == f"no item with key {key!r}"
        with pytest.raises(NotFound):
            ann.delete(key)
        with pytest.raises(NotFound):
            ann.update(dataclasses.replace(b, id=uuid.UUID(key), title="x"))
    with pytest.raises(Forbidden):  # giving one's item away
        ann.patch(ka, {"owner": "bob"})
    with pytest.raises(Forbidden):
        ann.update(dataclasses.replace(a, owner="bob"))
    assert ann.update_all(None, {"priority": 4}) == 1
    assert raw.read(kb).priority == 0  # type: ignore[union-attr]
    assert ann.delete_all(None) == 1
    assert raw.count() == 1 and raw.read(kb) == b


def test_read_only_and_allow_all() -> None:
    raw = _raw()
    raw.create(Item(owner="bob", title="b"))
    viewer = secured(raw, Policy.read_only(), ANN)
    assert viewer.count() == 1
    key = raw.key_of(viewer.search().items[0])
    with pytest.raises(Forbidden):
        viewer.create(Item(owner="ann", title="x"))
    with pytest.raises(Forbidden):
        viewer.patch(key, {"title": "x"})
    with pytest.raises(Forbidden):
        viewer.delete(key)
    assert viewer.delete_all(None) == 0 and viewer.update_all(None, {}) == 0
    with pytest.raises(Forbidden):
        viewer.update_all(None, {"title": "x"})
    assert raw.count() == 1
    anyone = secured(raw, Policy.allow_all(), ANN)
    anyone.patch(key, {"title": "y"})
    assert raw.read(key).title == "y"  # type: ignore[union-attr]


def test_scoped_policy() -> None:
    raw = _raw()
    policy = Policy.scoped(
        {"admin": Policy.allow_all(), "user": Policy.owner("owner"), "auditor": Policy.read_only()}
    )
    admin = secured(raw, policy, Principal("root", {"admin", "user"}))
    user = secured(raw, policy, ANN)
    auditor = secured(raw, policy, Principal("aud", {"auditor"}))
    nobody = secured(raw, policy, Principal("eve"))
    x = admin.create(Item(owner="bob", title="x"))  # admin is not forced to own it
    assert x.owner == "bob"
    with pytest.raises(Forbidden):  # a user's items are its own
        user.create(Item(owner="bob", title="u"))
    u = user.create({"title": "u"})  # type: ignore[arg-type]  # a mapping, as above
    assert u.owner == "ann"
    assert admin.count() == auditor.count() == 2 and user.count() == 1 and nobody.count() == 0
    with pytest.raises(Forbidden):
        auditor.delete(admin.key_of(x))
    with pytest.raises(Forbidden):
        nobody.create(Item(owner="eve", title="e"))
    with pytest.raises(NotFound):
        nobody.delete(admin.key_of(x))
    admin.delete(admin.key_of(x))


def test_hidden_and_locked_attributes() -> None:
    raw = _raw()
    policy = Policy(readable=["owner", "title", "priority"], writable=["title", "priority"])
    ann = secured(raw, policy, ANN)
    assert isinstance(ann, SecuredStore)
    with pytest.raises(Forbidden) as e:
        ann.create(Item(owner="ann", title="t", body="secret"))
    assert e.value.field == "body"
    made = raw.create(Item(owner="ann", title="t", body="secret", code="c1"))
    key = raw.key_of(made)
    seen = ann.read(key)
    assert seen is not None and seen.body is None and seen.code is None and seen.title == "t"
    assert seen.id == made.id  # the key is always readable
    for bad in (F.body == "secret", F.code.exists()):
        with pytest.raises(Forbidden) as e:
            ann.search(bad)
        assert e.value.field in ("body", "code")
        with pytest.raises(Forbidden):
            ann.count(bad)
        with pytest.raises(Forbidden):
            ann.delete_all(bad)
        with pytest.raises(Forbidden):
            ann.patch(key, {"title": "x"}, precondition=bad)
    with pytest.raises(Forbidden):
        ann.search(order=[-F.body])
    with pytest.raises(Forbidden) as e:
        ann.patch(key, {"body": "mine now"})
    assert e.value.field == "body"
    # an update of what was read keeps what the principal cannot see or set
    changed = ann.update(dataclasses.replace(seen, title="new", owner="bob"), if_match=etag(seen))
    assert changed.title == "new" and changed.owner == "ann" and changed.body is None
    stored = raw.read(key)
    assert stored is not None and (stored.body, stored.code, stored.owner) == (
        "secret",
        "c1",
        "ann",
    )
    with pytest.raises(PreconditionFailed):  # the etag of the real item is not accepted
        ann.patch(key, {"title": "y"}, if_match=etag(stored))
    assert ann.patch(key, {"priority": 2}, if_match=etag(changed)).priority == 2


def test_update_filter_before_and_after() -> None:
    raw = _raw()
    policy = Policy(update=F.priority < 5, delete=F.active == True)  # noqa: E712
    ann = secured(raw, policy, ANN)
    low = ann.create(Item(owner="ann", title="low", priority=1))
    high = ann.create(Item(owner="ann", title="high", priority=7, active=False))
    with pytest.raises(Forbidden):
        ann.patch(ann.key_of(low), {"priority": 9})  # after the change it would be outside
    with pytest.raises(Forbidden):
        ann.patch(ann.key_of(high), {"priority": 1})  # before the change it is outside
    with pytest.raises(Forbidden):
        ann.delete(ann.key_of(high))
    with pytest.raises(Forbidden):
        ann.update_all(None, {"priority": 6})  # would take "low" outside: nothing changes
    assert raw.read(ann.key_of(low)) == low
    assert ann.update_all(None, {"title": "t"}) == 1  # only "low" may be updated
    assert ann.delete_all(None) == 1  # only "low" may be deleted
    assert [i.title for i in raw.search().items] == ["high"]


def test_edit_batch() -> None:
    raw = _raw()
    bobs = raw.create(Item(owner="bob", title="b"))
    ann = secured(raw, Policy.owner(), ANN)
    mine = ann.create(Item(owner="ann", title="m"))
    kb, km = raw.key_of(bobs), raw.key_of(mine)
    results = ann.edit_batch([Edit.patch(km, {"title": "m2"}), Edit.delete(kb)], atomic=True)
    assert [r.code for r in results] == ["aborted", "not_found"]
    assert raw.read(km) == mine and raw.read(kb) == bobs
    results = ann.edit_batch(
        [
            Edit.create({"title": "new"}),
            Edit.patch(km, {"title": "m2"}),
            Edit.patch(km, {"owner": "bob"}),
            Edit.update(dataclasses.replace(bobs, title="stolen")),
            Edit.delete(km, if_match="stale"),
        ],
        atomic=False,
    )
    assert [r.code for r in results] == [
        None,
        None,
        "forbidden",
        "not_found",
        "precondition_failed",
    ]
    assert results[0].item is not None and results[0].item.owner == "ann"
    assert raw.read(km).title == "m2"  # type: ignore[union-attr]
    assert raw.read(kb) == bobs
    results = ann.edit_batch(
        [
            Edit.create(Item(owner="ann", title="c")),
            Edit.patch(km, {"priority": 1}),
            Edit.delete(km),
        ]
    )
    assert all(r.ok for r in results)
    assert ann.count() == 2 and raw.count() == 3


async def test_async_owner_and_stacking() -> None:
    db = persisty.aio.connect("memory://")
    raw = db.store(Item)
    ann = secured(cached(raw), Policy.owner(), ANN)
    bob = cached(secured(raw, Policy.owner(), BOB))
    a = await ann.create(Item(owner="ann", title="a"))
    b = await bob.create(Item(owner="bob", title="b"))
    assert await ann.read(bob.key_of(b)) is None
    assert await bob.read(ann.key_of(a)) is None
    assert [i.title for i in (await ann.search()).items] == ["a"]
    assert await bob.count() == 1
    with pytest.raises(NotFound):
        await bob.delete(ann.key_of(a))
    assert await ann.update_all(None, {"priority": 3}) == 1
    assert (await raw.read(bob.key_of(b))).priority == 0  # type: ignore[union-attr]


# ---- the property: nothing outside the policy is observed or changed ---------------------

SUBJECTS = ["ann", "bob", "cy"]
PRINCIPALS = [
    Principal(s, scopes)
    for s in SUBJECTS
    for scopes in ({"user"}, {"admin"}, {"auditor"}, set(), {"user", "auditor"})
]
USER = Policy(
    read=lambda p: (F.owner == p.subject) | (F.priority == 0),
    create=lambda p: F.owner == p.subject,
    update=lambda p: (F.owner == p.subject) & (F.priority < 4),
    delete=lambda p: (F.owner == p.subject) & (F.active == True),  # noqa: E712
    readable=["owner", "title", "priority", "active", "tags"],
    writable=["title", "priority", "active", "tags"],
    force=lambda p: {"owner": p.subject},
)
POLICY = Policy.scoped(
    {
        "user": USER,
        "admin": Policy.allow_all(),
        "auditor": Policy(
            read=F.active == True,  # noqa: E712
            create=F.owner == "nobody",
            update=F.owner == "nobody",
            delete=F.owner == "x",
            writable=[],
        ),
    }
)
FILTERS = [
    None,
    F.priority > 1,
    F.owner == "ann",
    F.active == False,  # noqa: E712
    F.title.contains("t"),
    ~(F.priority == 0),
]
CHANGES = st.sampled_from(
    [
        {"priority": 0},
        {"priority": 5},
        {"title": "tt"},
        {"owner": "bob"},
        {"active": False},
        {"body": "b"},
        {"priority": 2, "owner": "ann"},
    ]
)


def _fresh_item(draw: Any) -> Item:
    return Item(
        owner=draw(st.sampled_from(SUBJECTS)),
        title=draw(st.sampled_from(["t", "u"])),
        priority=draw(st.integers(0, 5)),
        active=draw(st.booleans()),
        body=draw(st.sampled_from([None, "b"])),
    )


@st.composite
def operations(draw: Any) -> tuple[str, Any]:
    kind = draw(
        st.sampled_from(
            [
                "read",
                "read_batch",
                "search",
                "count",
                "create",
                "update",
                "patch",
                "delete",
                "edit_batch",
                "update_all",
                "delete_all",
            ]
        )
    )
    key = draw(st.integers(0, 9))  # index into the current items; 9 is a missing key
    if kind == "create":
        return kind, _fresh_item(draw)
    if kind in ("search", "count", "delete_all"):
        return kind, draw(st.sampled_from(FILTERS))
    if kind == "update_all":
        return kind, (draw(st.sampled_from(FILTERS)), draw(CHANGES))
    if kind == "read_batch":
        return kind, draw(st.lists(st.integers(0, 9), max_size=4))
    if kind == "update":
        return kind, (key, draw(CHANGES))
    if kind == "patch":
        return kind, (key, draw(CHANGES))
    if kind == "edit_batch":
        edits = draw(
            st.lists(
                st.tuples(
                    st.sampled_from(["create", "patch", "delete", "update"]),
                    st.integers(0, 9),
                    CHANGES,
                    st.builds(lambda: None).map(lambda _: _fresh_item(draw)),
                ),
                min_size=1,
                max_size=4,
            )
        )
        return kind, (edits, draw(st.booleans()))
    return kind, key


def _check(f: Filter, item: Item) -> bool:
    return compile_filter(validate_filter(f, ITEM), ITEM)(item)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    start=st.lists(
        st.tuples(st.sampled_from(SUBJECTS), st.integers(0, 5), st.booleans()),
        min_size=3,
        max_size=8,
    ),
    steps=st.lists(st.tuples(st.sampled_from(PRINCIPALS), operations()), min_size=1, max_size=12),
)
def test_no_principal_sees_or_changes_what_its_policy_excludes(
    start: list[tuple[str, int, bool]], steps: list[tuple[Principal, tuple[str, Any]]]
) -> None:
    raw = _raw()
    for owner, priority, active in start:
        raw.create(
            Item(owner=owner, title="t", priority=priority, active=active, body="b", code=None)
        )
    for principal, (kind, arg) in steps:
        rules = POLICY.rules(principal).validated(ITEM)
        store = secured(raw, POLICY, principal)
        before = {raw.key_of(i): i for i in raw.search(limit=1000).items}
        keys = sorted(before)

        def key_at(i: int, keys: list[str] = keys) -> str:
            return keys[i] if i < len(keys) else str(uuid.UUID(int=i))

        def visible(item: Item, rules: Any = rules) -> bool:
            return _check(rules.read, item)

        hidden = [
            a.name
            for a in ITEM.attrs
            if rules.readable is not None and a.name not in rules.readable
        ]

        def shown(item: Item, hidden: list[str] = hidden) -> Item:
            cleared: dict[str, Any] = dict.fromkeys(hidden)
            return dataclasses.replace(item, **cleared)

        observed: list[Item] = []
        error: PersistyError | None = None
        target: str | None = None
        try:
            if kind == "read":
                target = key_at(arg)
                got = store.read(target)
                if got is not None:
                    observed.append(got)
                else:
                    assert target not in before or not visible(before[target])
            elif kind == "read_batch":
                ks = [key_at(i) for i in arg]
                for k, got in zip(ks, store.read_batch(ks), strict=True):
                    if got is None:
                        assert k not in before or not visible(before[k])
                    else:
                        observed.append(got)
            elif kind == "search":
                page = store.search(arg, limit=1000)
                observed.extend(page.items)
                want = [k for k, i in before.items() if visible(i) and _check(arg or ALL, i)]
                assert sorted(store.key_of(i) for i in page.items) == sorted(want)
            elif kind == "count":
                want = [k for k, i in before.items() if visible(i) and _check(arg or ALL, i)]
                assert store.count(arg) == len(want)
            elif kind == "create":
                observed.append(store.create(arg))
            elif kind == "update":
                target = key_at(arg[0])
                base = before.get(target) or Item(id=uuid.UUID(target), owner="ann", title="g")
                store.update(dataclasses.replace(shown(base), **arg[1]))
            elif kind == "patch":
                target = key_at(arg[0])
                observed.append(store.patch(target, arg[1]))
            elif kind == "delete":
                target = key_at(arg)
                store.delete(target)
            elif kind == "edit_batch":
                edits = []
                for what, i, changes, fresh in arg[0]:
                    k = key_at(i)
                    if what == "create":
                        edits.append(Edit.create(fresh))
                    elif what == "patch":
                        edits.append(Edit.patch(k, changes))
                    elif what == "delete":
                        edits.append(Edit.delete(k))
                    else:
                        base = before.get(k) or Item(id=uuid.UUID(k), owner="ann", title="g")
                        edits.append(Edit.update(dataclasses.replace(shown(base), **changes)))
                for r in store.edit_batch(edits, atomic=arg[1]):
                    if r.item is not None:
                        observed.append(r.item)
            elif kind == "update_all":
                store.update_all(arg[0], arg[1])
            elif kind == "delete_all":
                store.delete_all(arg)
        except PersistyError as e:
            error = e
        # writing to an item one cannot see reveals nothing: it is "not found"
        if (
            target is not None
            and target in before
            and not visible(before[target])
            and (kind in ("update", "patch", "delete"))
        ):
            if kind == "patch" and not isinstance(error, NotFound):
                # refused before looking: a missing key gets the very same answer
                assert error is not None, kind
                with pytest.raises(type(error)) as again:
                    store.patch(str(uuid.uuid4()), arg[1])
                assert again.value.message == error.message
            else:
                assert isinstance(error, NotFound), (kind, error)
        # nothing hidden is observed
        for item in observed:
            for name in hidden:
                assert getattr(item, name) is None, name
        after = {raw.key_of(i): i for i in raw.search(limit=1000).items}
        for item in observed:
            k = store.key_of(item)
            state = (
                before.get(k)
                if kind in ("read", "read_batch", "search")
                else (after.get(k) or before.get(k))
            )
            assert state is not None and (
                visible(state) or kind in ("create", "edit_batch") or kind == "patch"
            ), (kind, item)
            if kind in ("read", "read_batch", "search"):
                assert item == shown(state)
        # nothing is changed that the policy excludes
        for k in set(before) | set(after):
            old, new = before.get(k), after.get(k)
            if old == new:
                continue
            if old is None:
                assert new is not None and _check(rules.create, new), ("created", principal, new)
                assert (
                    new.owner == principal.subject
                    or "user" not in principal.scopes
                    or ("admin" in principal.scopes)
                )
                if rules.writable is not None:  # what it may not write keeps its default
                    blank = Item(owner="", title="")
                    for a in ITEM.attrs:
                        if (
                            a.name not in rules.writable
                            and a.name not in rules.forced
                            and (a.generated is None and a.name not in ("id", "owner", "title"))
                        ):
                            assert getattr(new, a.name) == getattr(blank, a.name), a.name
            elif new is None:
                assert visible(old) and _check(rules.delete, old), ("deleted", principal, old)
            else:
                assert visible(old) and _check(rules.update, old), ("updated", principal, old)
                assert _check(rules.update, new), ("updated into", principal, new)
                if rules.writable is not None:
                    for a in ITEM.attrs:
                        if a.name not in rules.writable and a.generated is None:
                            assert getattr(old, a.name) == getattr(new, a.name), a.name
