"""The hit path of ``@persisted`` on a plain function (plain code).

A wrapper taking ``*args, **kwargs`` pays for packing its arguments on every call (an
empty ``kwargs`` dict is made even when there is none) and then for sorting them into a key.
For a function whose parameters are all named (no ``*args``/``**kwargs``), this module
writes a wrapper with the function's own parameter list, so Python itself binds a call
(``f(1)``, ``f(x=1)`` and a default alike) and the key is the tuple of the parameters,
built in one step: a hit is one tuple, one dict subscript and a counter. The key is the one
:class:`~persisty.memo._keys.KeyMaker` binds for the same call (parameters in order,
defaults applied, ignored ones left out), so hits and misses share one cache. A call with an
unhashable argument, or a missing key, goes to ``miss``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

_NAMED = (
    inspect.Parameter.POSITIONAL_ONLY,
    inspect.Parameter.POSITIONAL_OR_KEYWORD,
    inspect.Parameter.KEYWORD_ONLY,
)
_PREFIX = "_persisty_"

Miss = Callable[[Any, tuple[Any, ...], dict[str, Any]], Any]
"""``miss(key, args, kwargs)``: the slow path of a call (``key`` ``None``: unhashable)."""


def fast_wrapper(
    signature: inspect.Signature,
    ignored: frozenset[int],
    data: dict[Any, Any],
    miss: Miss,
) -> tuple[Callable[..., Any], Callable[[], int], Callable[[], None]] | None:
    """``(wrapper, hits, reset)`` for a function of ``signature`` whose results are in
    ``data`` (keyed by the tuple of its parameters but the ``ignored`` positions), or
    ``None`` when the signature has ``*args``/``**kwargs`` (the generic wrapper binds those).
    ``hits()`` counts the calls answered from ``data``; ``reset()`` zeroes it.

    Example::

        wrapper, hits, reset = fast_wrapper(inspect.signature(f), frozenset(), {}, miss)
    """
    params = list(signature.parameters.values())
    if any(p.kind not in _NAMED or p.name.startswith(_PREFIX) for p in params):
        return None
    defaults: dict[str, Any] = {}
    parts: list[str] = []
    positional, keyword = [], []
    star_done = False
    for i, p in enumerate(params):
        if p.kind is inspect.Parameter.KEYWORD_ONLY:
            if not star_done:
                parts.append("*")
                star_done = True
            keyword.append(p.name)
        else:
            positional.append(p.name)
        text = p.name
        if p.default is not inspect.Parameter.empty:
            defaults[f"{_PREFIX}d{i}"] = p.default
            text += f"={_PREFIX}d{i}"
        parts.append(text)
        if p.kind is inspect.Parameter.POSITIONAL_ONLY and (
            i + 1 == len(params) or params[i + 1].kind is not inspect.Parameter.POSITIONAL_ONLY
        ):
            parts.append("/")
    key_names = [p.name for i, p in enumerate(params) if i not in ignored]
    key = "(" + "".join(f"{n}, " for n in key_names) + ")"
    args = "(" + "".join(f"{n}, " for n in positional) + ")"
    kwargs = "{" + ", ".join(f"{n!r}: {n}" for n in keyword) + "}"
    source = f"""
def {_PREFIX}make({_PREFIX}data, {_PREFIX}miss):
    {_PREFIX}hits = 0

    def wrapper({", ".join(parts)}):
        nonlocal {_PREFIX}hits
        {_PREFIX}key = {key}
        try:
            {_PREFIX}value = {_PREFIX}data[{_PREFIX}key]
        except KeyError:
            return {_PREFIX}miss({_PREFIX}key, {args}, {kwargs})
        except TypeError:
            return {_PREFIX}miss(None, {args}, {kwargs})
        {_PREFIX}hits += 1
        return {_PREFIX}value

    def hits():
        return {_PREFIX}hits

    def reset():
        nonlocal {_PREFIX}hits
        {_PREFIX}hits = 0

    return wrapper, hits, reset
"""
    namespace: dict[str, Any] = dict(defaults)
    exec(compile(source, "<persisted fast path>", "exec"), namespace)  # noqa: S102
    made: tuple[Callable[..., Any], Callable[[], int], Callable[[], None]] = namespace[
        f"{_PREFIX}make"
    ](data, miss)
    return made
