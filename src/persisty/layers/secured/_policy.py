"""Who is asking (``Principal``) and what they may do (``Policy``): the access-control
layer's rules, shared by its sync and async stores."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from persisty.errors import ValidationError
from persisty.model import StoreMeta
from persisty.query import ALL, NONE, Compare, Filter, Op, Or, validate_filter

T = TypeVar("T")


@dataclass(frozen=True, slots=True, init=False)
class Principal:
    """Who performs an operation: a ``subject`` id and the ``scopes`` granted to it.

    Example::

        ann = Principal("ann", scopes={"user"})
        "user" in ann.scopes   # True
    """

    subject: str
    scopes: frozenset[str] = field(default=frozenset())

    def __init__(self, subject: str, scopes: Iterable[str] = ()) -> None:
        if not isinstance(subject, str) or not subject:
            raise ValidationError("a principal's subject is a non-empty string", field="subject")
        if isinstance(scopes, str):
            scopes = scopes.split()
        object.__setattr__(self, "subject", subject)
        object.__setattr__(self, "scopes", frozenset(scopes))


@dataclass(frozen=True, slots=True)
class Rules:
    """A policy resolved for one principal: the filters an item must match to be read,
    created, updated (before and after) or deleted, the attributes that may be read and
    written (``None``: all), and the values forced on create.

    Example::

        rules = Policy.owner("owner").rules(Principal("ann"))
        rules.read        # (F.owner eq 'ann')
        rules.forced      # {'owner': 'ann'}
    """

    read: Filter
    create: Filter
    update: Filter
    delete: Filter
    readable: frozenset[str] | None = None
    writable: frozenset[str] | None = None
    forced: Mapping[str, Any] = field(default_factory=dict)

    def validated(self, meta: StoreMeta) -> Rules:
        """These rules checked against ``meta`` (filters coerced, attribute names known)."""
        for names in (self.readable, self.writable, self.forced):
            for name in names or ():
                meta.attr(name)
        readable = self.readable
        if readable is not None:  # the key is always readable: items are named by it
            readable = readable | frozenset(meta.key.attrs)
        return Rules(
            validate_filter(self.read, meta),
            validate_filter(self.create, meta),
            validate_filter(self.update, meta),
            validate_filter(self.delete, meta),
            readable,
            self.writable,
            dict(self.forced),
        )


Rule = Filter | None | Callable[[Principal], Filter | None]
Names = Iterable[str] | None | Callable[[Principal], Iterable[str] | None]


def _resolve(rule: Any, principal: Principal) -> Any:
    return rule(principal) if callable(rule) and not isinstance(rule, Filter) else rule


def _names(value: Iterable[str] | None) -> frozenset[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        raise ValidationError("attribute names must be a list, not a string")
    return frozenset(value)


class Policy:
    """What a principal may do with one store. Each rule is a filter (``None``: every item)
    or a function of the :class:`Principal` returning one: ``read`` (items it can see),
    ``create`` (items it may create), ``update`` (items it may change; checked before and
    after the change), ``delete``; ``readable``/``writable`` name the attributes it may see
    and set (``None``: all); ``force`` gives values set on every create.

    Ready-made: :meth:`allow_all`, :meth:`read_only`, :meth:`owner`, :meth:`scoped`.

    Example::

        from persisty.query import F
        policy = Policy(read=lambda p: F.team.in_(sorted(p.scopes)),
                        update=lambda p: F.owner == p.subject,
                        delete=F.locked == False,
                        writable=["title", "body"])
    """

    def __init__(
        self,
        read: Rule = None,
        create: Rule = None,
        update: Rule = None,
        delete: Rule = None,
        *,
        readable: Names = None,
        writable: Names = None,
        force: Mapping[str, Any] | Callable[[Principal], Mapping[str, Any]] | None = None,
    ) -> None:
        self._read, self._create, self._update, self._delete = read, create, update, delete
        self._readable, self._writable, self._force = readable, writable, force

    def rules(self, principal: Principal) -> Rules:
        """This policy resolved for ``principal``."""
        if not isinstance(principal, Principal):
            raise ValidationError(
                f"expected a Principal, got {type(principal).__name__}", field="principal"
            )

        def f(rule: Rule) -> Filter:
            value = _resolve(rule, principal)
            return ALL if value is None else value

        forced = _resolve(self._force, principal) or {}
        return Rules(
            f(self._read),
            f(self._create),
            f(self._update),
            f(self._delete),
            _names(_resolve(self._readable, principal)),
            _names(_resolve(self._writable, principal)),
            dict(forced),
        )

    @staticmethod
    def allow_all() -> Policy:
        """Every principal may do everything.

        Example::

            secured(store, Policy.allow_all(), Principal("svc"))
        """
        return Policy()

    @staticmethod
    def read_only() -> Policy:
        """Every item may be read; nothing may be created, changed or deleted.

        Example::

            viewer = secured(store, Policy.read_only(), Principal("guest"))
        """
        return Policy(read=ALL, create=NONE, update=NONE, delete=NONE, writable=())

    @staticmethod
    def owner(attr: str = "owner") -> Policy:
        """A principal sees and changes only the items whose ``attr`` is its subject;
        ``attr`` is set to its subject on create and must stay so on update.

        Example::

            @stored
            class Memo:
                id: UUID = Attr(default_factory=uuid4)
                owner: str = ""           # a default: the policy sets it on create
                title: str = ""

            mine = secured(db.store(Memo), Policy.owner("owner"), Principal("ann"))
            mine.create(Memo(title="x")).owner   # "ann"
        """

        def own(p: Principal) -> Filter:
            return Compare(attr, Op.EQ, p.subject)

        return Policy(
            read=own, create=own, update=own, delete=own, force=lambda p: {attr: p.subject}
        )

    @staticmethod
    def scoped(policies: Mapping[str, Policy]) -> Policy:
        """Permissions by scope name: a principal gets the union of the policies of the
        scopes it holds (an item is readable if any of them lets it read it, and so on;
        values are forced on create only when every one of them forces them); a principal
        with none of the scopes may do nothing.

        Example::

            policy = Policy.scoped({"admin": Policy.allow_all(),
                                    "user": Policy.owner("owner"),
                                    "auditor": Policy.read_only()})
        """
        policies = dict(policies)
        for scope, p in policies.items():
            if not isinstance(p, Policy):
                raise ValidationError(f"scope {scope!r}: expected a Policy", field="policies")

        def union(principal: Principal) -> Rules:
            held = [p.rules(principal) for s, p in policies.items() if s in principal.scopes]
            if not held:
                return Rules(NONE, NONE, NONE, NONE, frozenset(), frozenset(), {})

            def names(values: list[frozenset[str] | None]) -> frozenset[str] | None:
                if any(v is None for v in values):
                    return None
                return frozenset().union(*(v for v in values if v is not None))

            forced = dict(held[0].forced)
            for r in held[1:]:
                forced = {k: v for k, v in forced.items() if k in r.forced and r.forced[k] == v}
            return Rules(
                Or.of(*(r.read for r in held)),
                Or.of(*(r.create for r in held)),
                Or.of(*(r.update for r in held)),
                Or.of(*(r.delete for r in held)),
                names([r.readable for r in held]),
                names([r.writable for r in held]),
                forced,
            )

        return _Scoped(union)


class _Scoped(Policy):
    def __init__(self, resolve: Callable[[Principal], Rules]) -> None:
        super().__init__()
        self._resolve_rules = resolve

    def rules(self, principal: Principal) -> Rules:
        if not isinstance(principal, Principal):
            raise ValidationError(
                f"expected a Principal, got {type(principal).__name__}", field="principal"
            )
        return self._resolve_rules(principal)
