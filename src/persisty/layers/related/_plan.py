"""The relations layer's pure parts (no I/O, shared by the async store and its generated
twin): foreign-key values as keys, declarations checked, the plan of writes a delete causes,
and the access-control layer of a stack."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Generic, TypeVar

from persisty.errors import ValidationError
from persisty.model import Relation, StoreMeta, meta_of
from persisty.store import Edit, EditKind

S = TypeVar("S")


def fk_keys(meta: StoreMeta, values: Sequence[Any]) -> list[str]:
    """Key strings of ``meta`` for foreign-key values (``None`` left out, order kept)."""
    keys: list[str] = []
    for v in values:
        if v is not None:
            keys.append(v if isinstance(v, str) else meta.key_string((v,)))
    return list(dict.fromkeys(keys))


class DeletePlan(Generic[S]):
    """The writes a delete causes, per store, deepest stores first when applied."""

    def __init__(self) -> None:
        self.stores: list[S] = []
        self.edits: dict[int, dict[str, Edit]] = {}

    def add(self, store: S, key: str, edit: Edit) -> None:
        if id(store) not in self.edits:
            self.stores.append(store)
            self.edits[id(store)] = {}
        found = self.edits[id(store)].get(key)
        if found is None or (found.kind != EditKind.DELETE and edit.kind == EditKind.DELETE):
            self.edits[id(store)][key] = edit

    def deleting(self, store: S, key: str) -> bool:
        e = self.edits.get(id(store), {}).get(key)
        return e is not None and e.kind == EditKind.DELETE


def check_declaration(r: Relation) -> None:
    """Refuses a relation whose foreign key is missing, refers to a composite key, or is
    cleared by ``set_null`` but not optional."""
    child = meta_of(r.child)
    parent = meta_of(r.parent)
    if r.foreign_key not in child.by_name:
        raise ValidationError(
            f"{r!r}: {child.name} has no attribute {r.foreign_key!r}", field=r.foreign_key
        )
    if len(parent.key.attrs) != 1:
        raise ValidationError(
            f"{r!r}: {parent.name} has a composite key; a foreign key "
            "refers to a single-attribute key",
            field=r.foreign_key,
        )
    if r.on_delete == "set_null" and not child.by_name[r.foreign_key].optional:
        raise ValidationError(f"{r!r}: set_null needs an optional foreign key", field=r.foreign_key)


def access_control_of(store: Any) -> Any:
    """The access-control layer in ``store``'s stack (``None`` without one): anything with
    ``outside_rules``."""
    s = store
    while s is not None:
        if hasattr(s, "outside_rules"):
            return s
        s = getattr(s, "inner", None)
    return None
