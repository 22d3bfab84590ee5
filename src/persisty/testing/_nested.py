"""Sample :class:`Venue` items and random filters on their nested paths, for the property
test that compares each engine's search with the Python evaluator."""

from __future__ import annotations

import random
from typing import Any

from hypothesis import strategies as st

from persisty.query import F, Filter
from persisty.testing.models import Color, Geo, Spot, Venue

CITIES = ["Osaka", "osaka", "Ösaka", "", "Tokyo", "To kyo", "a%_b", "3"]
COUNTRIES = [None, "JP", "jp", "", "FR"]
RANKS = [None, -3, 0, 1, 2, 7, 2**40]
FLAGS = [None, True, False]
LATITUDES = [-33.5, 0.0, 0.25, 34.7, 90.0]


def _spot(rng: random.Random) -> Spot:
    return Spot(
        city=rng.choice(CITIES),
        country=rng.choice(COUNTRIES),
        rank=rng.choice(RANKS),
        open=rng.choice(FLAGS),
        kind=rng.choice([None, *Color]),
        geo=None
        if rng.random() < 0.3
        else Geo(rng.choice(LATITUDES), rng.choice([-1.5, 0.0, 135.5])),
    )


def sample_venues(n: int = 36, seed: int = 19) -> list[Venue]:
    """``n`` venues with ``None`` parents, missing dict keys, short lists and numbers next
    to strings that look like them (``"3"`` and ``3``)."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        extra = {k: rng.choice([-1, 0, 3, 10]) for k in ("a", "a.b", "x y") if rng.random() < 0.6}
        labels = {k: rng.choice(["3", "x", "", "Osaka"]) for k in ("k", "/") if rng.random() < 0.6}
        out.append(
            Venue(
                id=f"v{i:02d}",
                name=rng.choice(["", "Hall", "hall", "Dome"]),
                spot=None if rng.random() < 0.2 else _spot(rng),
                visits=[_spot(rng) for _ in range(rng.randrange(3))],
                extra=extra,
                labels=labels,
            )
        )
    return out


_TEXT = st.sampled_from(["", "o", "O", "Osaka", "saka", "ö", "Ö", "%", "_", "3", "k"])
_INTS = st.one_of(st.sampled_from(RANKS), st.integers(-5, 12))
_PATHS: dict[str, tuple[str, st.SearchStrategy[Any]]] = {
    "spot.city": ("str", st.sampled_from(CITIES)),
    "spot.country": ("str", st.sampled_from(COUNTRIES)),
    "spot.rank": ("int", _INTS),
    "spot.open": ("bool", st.sampled_from(FLAGS)),
    "spot.kind": ("enum", st.sampled_from([None, *Color])),
    "spot.geo.latitude": ("float", st.sampled_from([None, *LATITUDES, 1.0])),
    "spot.geo": ("struct", st.none()),
    "visits[0].city": ("str", st.sampled_from(CITIES)),
    "visits[1].rank": ("int", _INTS),
    "extra.a": ("int", st.sampled_from([None, -1, 0, 3, 10, "3"])),
    "/extra/a.b": ("int", st.sampled_from([None, 0, 3, 10])),
    "labels.k": ("str", st.sampled_from([None, "3", "x", "", "Osaka"])),
    "/labels/~1": ("str", st.sampled_from([None, "3", "x"])),
    "name": ("str", st.sampled_from(["", "Hall", "hall"])),
}


@st.composite
def _compare(draw: st.DrawFn) -> Filter:
    path = draw(st.sampled_from(sorted(_PATHS)))
    kind, values = _PATHS[path]
    ref = F[path]
    if kind == "struct":
        return ref.exists(draw(st.booleans()))
    ops = ["eq", "ne", "in", "exists"]
    if kind in ("str", "int", "float", "bool"):
        ops += ["lt", "lte", "gt", "gte"]
    if kind == "str":
        ops += ["contains", "icontains", "startswith", "istartswith", "endswith", "iendswith"]
    op = draw(st.sampled_from(ops))
    if op == "in":
        return ref.in_(draw(st.lists(values, min_size=1, max_size=3)))
    if op == "exists":
        return ref.exists(draw(st.booleans()))
    if op.endswith(("contains", "startswith", "endswith")):
        method: Any = getattr(ref, op)
        text_filter: Filter = method(draw(_TEXT))
        return text_filter
    value = draw(values)
    if op in ("lt", "lte", "gt", "gte") and value is None:
        op = "eq"
    built: Filter = {
        "eq": ref == value,
        "ne": ref != value,
        "lt": ref < value,
        "lte": ref <= value,
        "gt": ref > value,
        "gte": ref >= value,
    }[op]
    return built


nested_filters: st.SearchStrategy[Filter] = st.recursive(
    _compare(),
    lambda inner: st.one_of(
        st.tuples(inner, inner).map(lambda fs: fs[0] & fs[1]),
        st.tuples(inner, inner).map(lambda fs: fs[0] | fs[1]),
        inner.map(lambda f: ~f),
    ),
    max_leaves=5,
)
"""Random filters over :class:`Venue`'s nested paths."""
