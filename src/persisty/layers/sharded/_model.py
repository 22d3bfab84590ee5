"""The stored types of a sharded item: the parent rows and one derived type per shard path.

A shard path names a nested dataclass, dict or list of an item (``"location"``,
``"location.geolocation"``, ``"locations[]"``). Each shard's rows are keyed by the parent's
key (plus the list index for ``[]``), so rewriting an item overwrites its rows and a delete
knows every row without reading it; the parent row keeps each row's etag in ``shard_tags``.
Shard values are kept as plain data (``Any``): they are converted to the declared types
only when the item is put together, so nothing in a row can name code to run.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from persisty.errors import ValidationError
from persisty.layers._derived import redeclared
from persisty.model import Attr, meta_of, parse_path, stored

SHARDED_OF = "__persisty_sharded_of__"
SHARD_TAGS = "shard_tags"


@dataclass(frozen=True, slots=True)
class ShardPath:
    """One shard: ``segments`` are the names from the item to the value (no list steps),
    ``each`` says the value is a list split one row per element; ``cls`` its row type."""

    text: str
    segments: tuple[str, ...]
    each: bool
    name: str
    cls: type[Any]

    @property
    def depth(self) -> int:
        """How many names deep the value is."""
        return len(self.segments)


def _row_type(name: str, each: bool) -> type[Any]:
    namespace: dict[str, Any] = {"__module__": __name__, "__doc__": f"A row of {name}."}
    annotations: dict[str, Any] = {"parent": str}
    if each:
        annotations["index"] = int
    annotations["value"] = Any
    namespace["value"] = None
    namespace["__annotations__"] = annotations
    shadow = type(f"Shard_{name}", (), namespace)
    key = ("parent", "index") if each else ("parent",)
    return stored(shadow, key=key, name=name)  # type: ignore[call-overload, no-any-return]


def parse_shards(cls: type[Any], paths: Mapping[str, str]) -> list[ShardPath]:
    """The checked shard paths of ``cls`` (``ValidationError`` naming a bad one)."""
    if not isinstance(paths, Mapping) or not paths:
        raise ValidationError("paths maps shard paths to store names", field="paths")
    meta = meta_of(cls)
    result = []
    names = set()
    for text, name in paths.items():
        if not isinstance(name, str) or not name.isidentifier() or name in names:
            raise ValidationError(f"{text}: {name!r} is not a (distinct) store name", field=text)
        names.add(name)
        each = text.endswith("[]")
        path = parse_path(meta, text[:-2] if each else text)
        if any(isinstance(s, int) for s in path.segments) or path.text.startswith("/"):
            raise ValidationError(f"{text}: a shard path names attributes only", field=text)
        if path.root in meta.key.attrs:
            raise ValidationError(f"{text}: the key cannot be sharded", field=text)
        base = typing.get_origin(path.type) or path.type
        if (
            each
            and base is not Any  # plain data (a sealed model's encrypted attribute)
            and base not in (list, tuple)
            and typing.get_origin(_optional_base(path.type)) not in (list, tuple)
        ):
            raise ValidationError(f"{text}: {path.text} is not a list", field=text)
        result.append(
            ShardPath(text, tuple(str(s) for s in path.segments), each, name, _row_type(name, each))
        )
    texts = {p.segments: p for p in result}
    for p in result:
        for n in range(1, p.depth):
            outer = texts.get(p.segments[:n])
            if outer is not None and outer.each:
                raise ValidationError(f"{p.text}: inside the list shard {outer.text}", field=p.text)
    return sorted(result, key=lambda p: -p.depth)  # deepest first: split inside out


def _optional_base(tp: Any) -> Any:
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    return args[0] if len(args) == 1 else tp


def shard_model(cls: type[Any], paths: Mapping[str, str], *, name: str | None = None) -> type[Any]:
    """The ``@stored`` class of the parent rows of ``cls`` sharded at ``paths``: the same
    store name (override with ``name``), key and indexes, each sharded top-level attribute
    kept as plain data (``None`` when split off) and ``shard_tags`` (the rows' etags).

    Example::

        Rows = shard_model(Patient, {"visits[]": "patient_visits"})
        patients = sharded(db.store(Rows), {"visits[]": "patient_visits"})
    """
    meta = meta_of(cls)
    shards = parse_shards(cls, paths)
    roots = {p.segments[0] for p in shards}
    if SHARD_TAGS in meta.by_name:
        raise ValidationError(f"{SHARD_TAGS}: the name is taken by {meta.name}", field=SHARD_TAGS)
    namespace: dict[str, Any] = {"__module__": cls.__module__, "__doc__": meta.description}
    annotations: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        a = meta.by_name[f.name]
        tp: Any = a.type
        metadata: Mapping[str, Any] = f.metadata
        if f.name in roots:
            annotations[f.name] = Any
            namespace[f.name] = None
            continue
        annotations[f.name] = tp
        value = redeclared(f, metadata)
        if value is not dataclasses.MISSING:
            namespace[f.name] = value
    annotations[SHARD_TAGS] = dict[str, str]
    namespace[SHARD_TAGS] = Attr(default_factory=dict)
    namespace["__annotations__"] = annotations
    shadow = type(f"Sharded{cls.__name__}", (), namespace)
    for ix in meta.indexes:
        if any(a in roots for a in ix.attrs):
            raise ValidationError(
                f"{ix.attrs[0]}: an indexed attribute cannot be sharded", field=ix.attrs[0]
            )
    result = stored(
        shadow,
        key=meta.key.attrs,
        indexes=meta.indexes,  # type: ignore[call-overload]
        name=name or meta.name,
        label=meta.label,
    )
    setattr(result, SHARDED_OF, cls)
    result.__persisty_shards__ = shards
    return result  # type: ignore[no-any-return]
