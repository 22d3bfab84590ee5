"""Keeping the user's declared attribute order: stored items' dicts come back with their
keys sorted (persisty's canonical JSON, PostgreSQL's ``jsonb``), so a definition keeps the
order as a list of attribute paths beside its spec and puts it back when it is read."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from persisty.dynamic._models import Definition


def layout_of(spec: Mapping[str, Any]) -> list[str]:
    """The path of every attribute of a normalized spec, nested ones too, in declared order
    (``"address.city"``; a list's element is ``"tags[]"``).

    Example::

        from persisty.dynamic import layout_of

        spec = {"attrs": {"b": {"type": "str"},
                          "a": {"type": "dict", "attrs": {"z": {"type": "str"}}}}}
        assert layout_of(spec) == ["b", "a", "a.z"]
    """
    paths: list[str] = []
    _walk(spec.get("attrs", {}), "", paths)
    return paths


def _walk(attrs: Mapping[str, Any], prefix: str, paths: list[str]) -> None:
    for name, attr in attrs.items():
        path = prefix + name
        paths.append(path)
        _nested(attr, path, paths)


def _nested(attr: Any, path: str, paths: list[str]) -> None:
    if not isinstance(attr, Mapping):
        return
    if isinstance(attr.get("attrs"), Mapping):
        _walk(attr["attrs"], path + ".", paths)
    if isinstance(attr.get("items"), Mapping):
        _nested(attr["items"], path + "[]", paths)


def in_layout(spec: Mapping[str, Any], layout: list[str]) -> dict[str, Any]:
    """``spec`` with its attributes (nested ones too) in ``layout``'s order; attributes
    ``layout`` does not name keep their order, after the others."""
    rank = {p: i for i, p in enumerate(layout)}
    out = dict(spec)
    if isinstance(spec.get("attrs"), Mapping):
        out["attrs"] = _sorted(spec["attrs"], "", rank)
    return out


def _sorted(attrs: Mapping[str, Any], prefix: str, rank: dict[str, int]) -> dict[str, Any]:
    names = sorted(attrs, key=lambda n: rank.get(prefix + n, len(rank)))
    return {n: _attr(attrs[n], prefix + n, rank) for n in names}


def _attr(attr: Any, path: str, rank: dict[str, int]) -> Any:
    if not isinstance(attr, Mapping):
        return attr
    out = dict(attr)
    if isinstance(attr.get("attrs"), Mapping):
        out["attrs"] = _sorted(attr["attrs"], path + ".", rank)
    if isinstance(attr.get("items"), Mapping):
        out["items"] = _attr(attr["items"], path + "[]", rank)
    return out


def ordered(d: Definition) -> Definition:
    """A stored definition with its spec in the declared order (its etag is the same)."""
    if not d.layout:
        return d
    return dataclasses.replace(d, spec=in_layout(d.spec, d.layout))


def laid_out(d: Definition) -> Definition:
    """A definition about to be stored, with the order of its spec's attributes."""
    return dataclasses.replace(d, layout=layout_of(d.spec))
