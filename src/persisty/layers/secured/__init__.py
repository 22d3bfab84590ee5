"""The access-control layer: a :class:`Policy` turns a :class:`Principal` into the
:class:`Rules` a secured store enforces (async source, generated sync twin, and
:func:`secured`, which picks the side)."""

from __future__ import annotations

from typing import Any, TypeVar, overload

from persisty.errors import ValidationError
from persisty.layers._dispatch import is_async
from persisty.layers.secured._async import AsyncSecuredStore
from persisty.layers.secured._policy import Policy, Principal, Rules
from persisty.layers.secured._sync import SecuredStore
from persisty.store import AsyncStore, Store

__all__ = ["AsyncSecuredStore", "Policy", "Principal", "Rules", "SecuredStore", "secured"]

T = TypeVar("T")


@overload
def secured(store: AsyncStore[T], policy: Policy, principal: Principal) -> AsyncStore[T]: ...


@overload
def secured(store: Store[T], policy: Policy, principal: Principal) -> Store[T]: ...


def secured(store: Any, policy: Policy, principal: Principal) -> Any:
    """``store`` as seen by ``principal`` under ``policy`` (sync in, sync out; async in,
    async out). Items the policy hides behave as missing: reads return ``None``, searches
    and counts leave them out, writes to them raise ``NotFound``. A write the policy forbids
    on a visible item (or a create it forbids) raises ``Forbidden``.

    Example::

        from persisty.layers import Policy, Principal, secured

        mine = secured(db.store(Note), Policy.owner("owner"), Principal("ann", scopes={"user"}))
        mine.create(Note(title="hi"))          # owner forced to "ann"
        mine.search().items                    # only ann's notes
    """
    if not isinstance(policy, Policy):
        raise ValidationError(f"expected a Policy, got {type(policy).__name__}", field="policy")
    if is_async(store, "secured"):
        return AsyncSecuredStore(store, policy, principal)
    return SecuredStore(store, policy, principal)
