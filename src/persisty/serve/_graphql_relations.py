"""The relation graph: the nested fields of each served store, from the declared relations
and the links given to ``app`` (GraphQL and the admin UI follow it)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from persisty.errors import ValidationError
from persisty.layers import relations_of
from persisty.model import meta_of
from persisty.serve._api import Link, Served


@dataclass(frozen=True)
class RelationGraph:
    """The nested fields of each served store, by store name and field name: ``belongs_to``
    gives (attribute holding the target's key, target store); ``has_many`` gives (store of
    the children, their attribute holding this store's key, whether there is at most one)."""

    belongs_to: dict[str, dict[str, tuple[str, str]]] = field(default_factory=dict)
    has_many: dict[str, dict[str, tuple[str, str, bool]]] = field(default_factory=dict)


def relation_graph(served: Mapping[str, Served], links: Iterable[Link]) -> RelationGraph:
    """The relations declared on the served classes (``BelongsTo``, ``HasMany``, ``HasOne``)
    and the ``links`` given to ``app``; a relation to a store that is not served is left out,
    a link to one is an error."""
    graph = RelationGraph()
    for s in served.values():
        for rel_name, rel in relations_of(s.cls).items():
            target = meta_of(rel.target)
            if target.name not in served:
                continue
            if rel.kind == "belongs_to":
                graph.belongs_to.setdefault(s.name, {})[rel_name] = (rel.foreign_key, target.name)
            else:
                graph.has_many.setdefault(s.name, {})[rel_name] = (
                    target.name,
                    rel.foreign_key,
                    not rel.many,
                )
    for link in links:
        src, dst = meta_of(link.source), meta_of(link.target)
        if src.name not in served or dst.name not in served:
            raise ValidationError(
                f"link {src.name}.{link.attr}: both stores must be served", field="links"
            )
        src.attr(link.attr)
        if len(dst.key.attrs) != 1:
            raise ValidationError(
                f"link to {dst.name}: the target needs a one-attribute key", field="links"
            )
        graph.belongs_to.setdefault(src.name, {})[link.field_name()] = (link.attr, dst.name)
        if link.back:
            graph.has_many.setdefault(dst.name, {})[link.back] = (src.name, link.attr, False)
    return graph
