"""The hit path of @persisted on a plain function (a wrapper with the function's own
parameters): every way of spelling one call is one entry, ignored parameters are left out,
unhashable arguments still work, and the counts are right."""

from __future__ import annotations

import inspect
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from persisty.memo import persisted


def _make() -> tuple[Any, list[tuple[int, int, int]]]:
    computed: list[tuple[int, int, int]] = []

    @persisted()
    def f(a: int, /, b: int = 2, *, c: int = 3) -> tuple[int, int, int]:
        """Doc of f."""
        computed.append((a, b, c))
        return (a, b, c)

    return f, computed


_call = st.tuples(
    st.integers(0, 3),
    st.one_of(st.none(), st.integers(0, 3)),
    st.booleans(),
    st.one_of(st.none(), st.integers(0, 3)),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(_call, max_size=25))
def test_every_spelling_of_a_call_is_one_entry(
    calls: list[tuple[int, int | None, bool, int | None]],
) -> None:
    f, computed = _make()
    seen: set[tuple[int, int, int]] = set()
    for a, b, b_by_name, c in calls:
        args: list[Any] = [a]
        kwargs: dict[str, Any] = {}
        if b is not None:
            if b_by_name:
                kwargs["b"] = b
            else:
                args.append(b)
        if c is not None:
            kwargs["c"] = c
        expected = (a, 2 if b is None else b, 3 if c is None else c)
        assert f(*args, **kwargs) == expected and f(*args, **kwargs) == expected
        seen.add(expected)
    assert sorted(computed) == sorted(seen)  # each distinct bound call computed once
    info = f.cache_info()
    assert info.misses == len(seen) and info.size == len(seen)
    assert info.hits == sum(1 for _ in calls) * 2 - len(seen)  # f is called twice per call
    f.cache_clear()
    assert f.cache_info() == (0, 0, 0, None)


def test_the_wrapper_keeps_name_doc_and_signature() -> None:
    f, _ = _make()
    assert f.__name__ == "f" and f.__doc__ == "Doc of f."
    assert inspect.signature(f) == inspect.signature(f.__wrapped__)
    assert list(inspect.signature(f).parameters) == ["a", "b", "c"]


def test_ignored_arguments_and_unhashable_arguments() -> None:
    runs: list[Any] = []

    @persisted(ignore=["verbose"])
    def g(x: Any, verbose: bool = False) -> int:
        runs.append(x)
        return len(x)

    assert g([1, 2]) == 2 and g([1, 2], verbose=True) == 2 and g(x=[1, 2]) == 2
    assert g("abc") == 3 and g("abc", True) == 3
    assert runs == [[1, 2], "abc"]
    assert g.cache_info().hits == 3 and g.cache_info().misses == 2


def test_none_is_cached_and_a_raising_worker_caches_nothing() -> None:
    runs: list[int] = []

    @persisted()
    def h(x: int) -> int | None:
        runs.append(x)
        if x < 0:
            raise ValueError(x)
        return None

    assert h(1) is None and h(1) is None and runs == [1]
    for _ in range(2):
        with pytest.raises(ValueError):
            h(-1)
    assert runs == [1, -1, -1]


def test_variadic_functions_use_the_binding_wrapper() -> None:
    runs: list[Any] = []

    @persisted()
    def v(*xs: int, **opts: int) -> int:
        runs.append((xs, opts))
        return sum(xs) + sum(opts.values())

    assert v(1, 2, k=3) == 6 and v(1, 2, k=3) == 6 and v(1, 2) == 3
    assert len(runs) == 2 and v.cache_info().hits == 1
