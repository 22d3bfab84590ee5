"""Relations between stored classes: ``BelongsTo``, ``HasMany`` and ``HasOne``.

Declared as plain class attributes of ``@stored`` classes (they are not stored attributes;
the foreign key is)::

    @stored
    class Author:
        id: str
        books = HasMany("Book", "author_id", on_delete="cascade")

    @stored
    class Book:
        id: str
        author_id: str | None = None
        author = BelongsTo(Author, "author_id")

The ``related`` layer (``persisty.layers``) reads related items in one batched call per
relation and enforces ``on_delete`` (``"block"``, ``"cascade"`` or ``"set_null"``) when a
referenced item is deleted through it.
"""

from __future__ import annotations

import sys
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

OnDelete = Literal["block", "cascade", "set_null"]
ON_DELETE: tuple[str, ...] = ("block", "cascade", "set_null")

_DECLARED: weakref.WeakSet[Relation] = weakref.WeakSet()


class Relation:
    """Base of the relation declarations; ``name`` and ``owner`` are set by the class."""

    kind = "relation"
    many = False

    def __init__(
        self,
        target: type[Any] | str | Callable[[], type[Any]],
        foreign_key: str,
        *,
        on_delete: OnDelete | None = None,
    ) -> None:
        if on_delete is not None and on_delete not in ON_DELETE:
            raise ValueError(f"on_delete must be one of {ON_DELETE}, not {on_delete!r}")
        if not isinstance(foreign_key, str) or not foreign_key:
            raise ValueError("a relation needs the name of its foreign-key attribute")
        self._target = target
        self.foreign_key = foreign_key
        self.on_delete = on_delete
        self.name = ""
        self.owner: type[Any] | None = None

    def __set_name__(self, owner: type[Any], name: str) -> None:
        self.owner = owner  # called again for the slotted class @stored makes: that one stays
        self.name = name
        _DECLARED.add(self)

    def __get__(self, instance: Any, owner: type[Any] | None = None) -> Relation:
        return self

    @property
    def target(self) -> type[Any]:
        """The related class (a name or a callable given at declaration is resolved now)."""
        t = self._target
        if isinstance(t, type):
            return t
        if isinstance(t, str):
            found = _resolve(t, self.owner)
            if found is None:
                raise LookupError(f"{self!r}: no @stored class named {t!r}")
            self._target = found
            return found
        resolved = t()
        self._target = resolved
        return resolved

    @property
    def parent(self) -> type[Any]:
        """The class whose key the foreign key holds."""
        raise NotImplementedError

    @property
    def child(self) -> type[Any]:
        """The class that has the foreign-key attribute."""
        raise NotImplementedError

    def __repr__(self) -> str:
        owner = self.owner.__name__ if self.owner else "?"
        target = (
            self._target
            if isinstance(self._target, str)
            else getattr(self._target, "__name__", "?")
        )
        return f"{owner}.{self.name} = {type(self).__name__}({target}, {self.foreign_key!r})"


class BelongsTo(Relation):
    """This item's ``foreign_key`` attribute holds the key of one ``target`` item (or
    ``None``). ``on_delete`` says what deleting that target does to this item.

    Example::

        @stored
        class Book:
            id: str
            author_id: str | None = None
            author = BelongsTo("Author", "author_id", on_delete="set_null")
    """

    kind = "belongs_to"

    @property
    def parent(self) -> type[Any]:
        return self.target

    @property
    def child(self) -> type[Any]:
        assert self.owner is not None
        return self.owner


class HasMany(Relation):
    """The ``target`` items whose ``foreign_key`` attribute holds this item's key.
    ``on_delete`` says what deleting this item does to them.

    Example::

        @stored
        class Author:
            id: str
            books = HasMany("Book", "author_id", on_delete="cascade")
    """

    kind = "has_many"
    many = True

    @property
    def parent(self) -> type[Any]:
        assert self.owner is not None
        return self.owner

    @property
    def child(self) -> type[Any]:
        return self.target


class HasOne(HasMany):
    """Like :class:`HasMany`, for at most one ``target`` item (the first by key is read).

    Example::

        @stored
        class User:
            id: str
            profile = HasOne("Profile", "user_id", on_delete="cascade")
    """

    kind = "has_one"
    many = False


@dataclass(frozen=True, slots=True)
class Reference:
    """``child.foreign_key`` holds keys of ``parent``; deleting a parent does ``on_delete``."""

    parent: type[Any]
    child: type[Any]
    foreign_key: str
    on_delete: str


def _stored(cls: Any) -> bool:
    meta = getattr(cls, "__persisty__", None)
    return meta is not None and getattr(meta, "cls", None) is cls


def _resolve(name: str, owner: type[Any] | None) -> type[Any] | None:
    if owner is not None:
        module = sys.modules.get(owner.__module__)
        found = getattr(module, name, None) if module else None
        if _stored(found):
            return found
    for r in list(_DECLARED):
        for cls in (r.owner, r._target):
            if _stored(cls) and (cls.__name__ == name or cls.__persisty__.name == name):  # type: ignore[union-attr]
                return cls  # type: ignore[return-value]
    return None


def relations_of(cls: type[Any]) -> dict[str, Relation]:
    """The relations declared on ``cls``, by name.

    Example::

        relations_of(Book)["author"].target is Author
    """
    result: dict[str, Relation] = {}
    for klass in reversed(cls.__mro__):
        for name, value in vars(klass).items():
            if isinstance(value, Relation):
                result[name] = value
    return result


def references_to(cls: type[Any]) -> list[Reference]:
    """Every declared reference to ``cls`` (from ``BelongsTo`` on other classes and from
    ``HasMany``/``HasOne`` on ``cls``), with the delete rule that applies (``block`` unless
    declared). ``TypeError`` when two declarations of one reference disagree.

    Example::

        [(r.child.__name__, r.foreign_key, r.on_delete) for r in references_to(Author)]
        # [("Book", "author_id", "cascade")]
    """
    rules: dict[tuple[type[Any], str], list[str | None]] = {}
    for r in list(_DECLARED):
        if r.owner is None or not _stored(r.owner):
            continue
        try:
            parent, child = r.parent, r.child
        except LookupError:
            continue
        if parent is cls:
            rules.setdefault((child, r.foreign_key), []).append(r.on_delete)
    result = []
    for (child, fk), declared in rules.items():
        explicit = {d for d in declared if d is not None}
        if len(explicit) > 1:
            raise TypeError(f"{child.__name__}.{fk}: conflicting on_delete rules {explicit}")
        result.append(Reference(cls, child, fk, explicit.pop() if explicit else "block"))
    return sorted(result, key=lambda r: (r.child.__name__, r.foreign_key))
