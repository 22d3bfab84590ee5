"""Who may do what with a definition: admin scope for changes, owners and shared scopes
for use, and the definition's data policy: its spec field normalized, and as a
:class:`persisty.layers.Policy`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from persisty.dynamic._values import spec_error
from persisty.errors import Forbidden
from persisty.layers import Policy, Principal

ADMIN_SCOPE = "admin"
POLICY_KINDS = ("allow", "read_only", "owner", "scoped")


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


def normalize_policy(raw: Any, attrs: Mapping[str, Any]) -> dict[str, Any]:
    """``{"kind": "allow" | "read_only" | "owner" | "scoped", …}``: ``owner`` names the
    attribute holding the owner (``"owner"`` by default); ``scoped`` maps scopes to one of
    the other kinds (``{"kind": "scoped", "scopes": {"admin": "allow", "user": "read_only"}}``)."""
    if raw is None:
        return {"kind": "allow"}
    if isinstance(raw, str):
        raw = {"kind": raw}
    if not isinstance(raw, Mapping) or raw.get("kind") not in POLICY_KINDS:
        raise spec_error("policy.kind", f"must be one of {', '.join(POLICY_KINDS)}")
    kind = raw["kind"]
    extra = [k for k in raw if k not in ("kind", "attr", "scopes")]
    if extra:
        raise spec_error(f"policy.{extra[0]}", "is not a field of a policy")
    if kind == "owner":
        attr = raw.get("attr", "owner")
        if attr not in attrs or attrs[attr]["type"] != "str":
            raise spec_error("policy.attr", f"{attr!r} must be a str attribute (the owner)")
        return {"kind": "owner", "attr": attr}
    if kind == "scoped":
        scopes = raw.get("scopes")
        if not isinstance(scopes, Mapping) or not scopes:
            raise spec_error("policy.scopes", "must map scopes to policies")
        out = {}
        for scope, sub in scopes.items():
            if not isinstance(scope, str) or not scope:
                raise spec_error("policy.scopes", "scopes are non-empty strings")
            norm = normalize_policy(sub, attrs)
            if norm["kind"] == "scoped":
                raise spec_error(f"policy.scopes.{scope}", "cannot be scoped again")
            out[scope] = norm
        return {"kind": "scoped", "scopes": out}
    return {"kind": kind}
