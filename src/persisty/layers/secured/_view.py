"""What one principal sees of a store under a policy: the rules, the hidden and locked
attributes, and the checks a secured store makes before it reads or writes (no I/O here; the
async store and its generated sync twin share these)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from persisty.errors import Forbidden, NotFound, PreconditionFailed, ValidationError
from persisty.layers.secured._policy import Policy, Principal
from persisty.model import StoreMeta, etag
from persisty.query import Filter, Order, attrs_of, compile_filter, expand_text, validate_filter
from persisty.store import OrderArg, prepare_create

T = TypeVar("T")


class SecuredView(Generic[T]):
    """The checks of a secured store, shared by :class:`AsyncSecuredStore` and
    :class:`SecuredStore` (which call :meth:`_apply_policy` once their ``meta`` is set)."""

    meta: StoreMeta

    def _apply_policy(self, policy: Policy, principal: Principal) -> None:
        self.policy = policy
        self.principal = principal
        rules = policy.rules(principal).validated(self.meta)
        self.rules = rules
        self._can_read = compile_filter(rules.read, self.meta)
        self._can_create = compile_filter(rules.create, self.meta)
        self._can_update = compile_filter(rules.update, self.meta)
        self._can_delete = compile_filter(rules.delete, self.meta)
        self._sequences = {a.name: 0 for a in self.meta.attrs if a.generated == "sequence"}
        names = [a.name for a in self.meta.attrs]
        keys = set(self.meta.key.attrs)
        # hidden: what the policy does not let this principal read, and what the model
        # declares unreadable (Attr(readable=False)); the key always stays readable
        self._hidden = [
            n
            for n in names
            if n not in keys
            and (
                (rules.readable is not None and n not in rules.readable)
                or not self.meta.by_name[n].readable
            )
        ]
        self.hidden: frozenset[str] = frozenset(self._hidden)
        self.locked: frozenset[str] = frozenset(self._locked_names(rules, names))
        self._text_attrs = tuple(
            a.name for a in self.meta.attrs if a.kind == "str" and a.name not in self.hidden
        )
        self._locked = self._locked_names(rules, names)

    # ---- helpers ------------------------------------------------------------------------

    @staticmethod
    def _locked_names(rules: Any, names: list[str]) -> list[str]:
        return (
            []
            if rules.writable is None
            else [n for n in names if n not in rules.writable and n not in rules.forced]
        )

    def _mask(self, item: T) -> T:
        if not self._hidden:
            return item
        return dataclasses.replace(item, **dict.fromkeys(self._hidden))  # type: ignore[type-var]

    def _shown(self, item: T | None) -> T | None:
        if item is None or not self._can_read(item):
            return None
        return self._mask(item)

    def _filter(self, f: Filter | None, what: str = "filter") -> Filter:
        """``f`` validated, refusing attributes the principal may not read; free text
        searches only the string attributes it may read."""
        v = validate_filter(f, self.meta)
        for name in sorted(attrs_of(v)):
            if name in self.hidden:
                raise Forbidden(
                    f"{name} is not readable, so it cannot be used in a {what}", field=name
                )
        if self.hidden:  # free text searches only what the principal may read
            v = expand_text(v, self._text_attrs)
        return v

    def _order(self, order: OrderArg) -> None:
        for o in Order.parse(order):
            if o.attr in self.hidden:
                raise Forbidden(
                    f"{o.attr} is not readable, so it cannot be used in an order", field=o.attr
                )

    def _missing(self, key: str) -> NotFound:
        return NotFound(f"no {self.meta.name} with key {key!r}")

    def _forbidden(self, action: str) -> Forbidden:
        return Forbidden(f"{self.principal.subject} may not {action} this {self.meta.name}")

    def _check_writable(self, names: Sequence[str]) -> None:
        for name in names:
            if name in self._locked:
                raise Forbidden(f"{name} is not writable", field=name)

    def _as_item(self, item: Any) -> Any:
        if isinstance(item, Mapping):
            return self.meta.from_builtins(item)
        if not isinstance(item, self.meta.cls):
            raise ValidationError(f"expected a {self.meta.cls.__name__}, got {type(item).__name__}")
        return item

    def _for_create(self, item: Any) -> Any:
        """The item to create: checked against the policy, forced values filled in where
        absent (a different value is refused)."""
        defaults = _defaults(self.meta.cls)
        forced = self.rules.forced
        if forced and isinstance(item, Mapping):
            for name, value in forced.items():
                if (
                    name in item
                    and item[name] is not None
                    and (self.meta.attr(name).coerce(item[name]) != value)
                ):
                    raise Forbidden(
                        f"{name} is set by the access policy; it cannot be {item[name]!r}",
                        field=name,
                    )
            item = {**item, **forced}
        item = self._as_item(item)
        for name, value in forced.items():
            given = getattr(item, name)
            if given is None or given == value:
                continue
            d = defaults.get(name, dataclasses.MISSING)
            if d is not dataclasses.MISSING and given == (d() if callable(d) else d):
                continue  # left at its default: filled in below
            raise Forbidden(
                f"{name} is set by the access policy; it cannot be {given!r}", field=name
            )
        keys = self.meta.key.attrs
        for a in self.meta.attrs:  # a locked attribute keeps its default (the key is free)
            if (
                a.name in self._locked
                and a.generated is None
                and a.name in defaults
                and (a.name not in keys)
            ):
                d = defaults[a.name]
                if getattr(item, a.name) != (d() if callable(d) else d):
                    raise Forbidden(f"{a.name} is not writable", field=a.name)
        if self.rules.forced:
            item = dataclasses.replace(item, **self.rules.forced)
        # check the item as it will be stored (generated values filled in, validated)
        checked = prepare_create(self.meta, item, datetime.now(UTC), self._sequences)
        if not self._can_create(checked):
            raise self._forbidden("create")
        return item

    def _check_before(
        self,
        current: T | None,
        key: str,
        can: Any,
        action: str,
        if_match: str | None,
        precondition: Filter | None,
    ) -> T:
        if current is None or not self._can_read(current):
            raise self._missing(key)
        if not can(current):
            raise self._forbidden(action)
        if if_match is not None and if_match != etag(self._mask(current)):
            raise PreconditionFailed("the item has changed (etag does not match)")
        if precondition is not None and not compile_filter(precondition, self.meta)(current):
            raise PreconditionFailed("the precondition does not hold")
        return current

    def _for_update(self, item: Any, current: T) -> Any:
        """``item`` with what the principal may not set taken from ``current``."""
        keep = {n: getattr(current, n) for n in self._locked}
        for n in self._hidden:
            if getattr(item, n) is None:
                keep[n] = getattr(current, n)
        return dataclasses.replace(item, **keep) if keep else item


def _defaults(cls: type[Any]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            result[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            result[f.name] = f.default_factory
    return result
