"""Who may do what with a definition: admin scope for changes, owners and shared scopes
for use, and the definition's data policy as a :class:`persisty.layers.Policy`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from persisty.errors import Forbidden
from persisty.layers import Policy, Principal

ADMIN_SCOPE = "admin"


def policy_of(spec: Mapping[str, Any]) -> Policy:
    """The Policy of a normalized definition's ``policy`` field.

    Example::

        from persisty.dynamic import policy_of

        policy_of({"policy": {"kind": "owner", "attr": "owner"}})   # Policy.owner("owner")
    """
    return _policy(spec.get("policy") or {"kind": "allow"})


def _policy(p: Mapping[str, Any]) -> Policy:
    kind = p["kind"]
    if kind == "read_only":
        return Policy.read_only()
    if kind == "owner":
        return Policy.owner(p.get("attr", "owner"))
    if kind == "scoped":
        return Policy.scoped({scope: _policy(sub) for scope, sub in p["scopes"].items()})
    return Policy.allow_all()


def require_admin(principal: Principal | None, scope: str, what: str) -> None:
    """``Forbidden`` unless the principal (``None``: the trusted process) has ``scope``."""
    if principal is not None and scope not in principal.scopes:
        raise Forbidden(f"{what} needs the {scope!r} scope")


def may_use(owner: str | None, shared: list[str], principal: Principal | None, scope: str) -> bool:
    """Whether the principal may see a definition and use its store: the trusted process,
    its owner, an admin, or a principal with one of the scopes it is shared with."""
    if principal is None or scope in principal.scopes:
        return True
    if owner is not None and principal.subject == owner:
        return True
    return bool(set(shared) & set(principal.scopes))


def may_change(owner: str | None, principal: Principal | None, scope: str) -> bool:
    """Whether the principal may alter, migrate, share or drop a definition: the trusted
    process, or an admin who owns it (a definition without an owner: any admin)."""
    if principal is None:
        return True
    return scope in principal.scopes and (owner is None or owner == principal.subject)
