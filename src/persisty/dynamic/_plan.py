"""What changing a definition takes: the steps between two normalized specs, each additive
(applied online by ``alter``) or destructive (needs ``migrate`` with a copy)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Step:
    """One difference between two definitions. ``kind`` is stable (``add_attr``,
    ``drop_attr``, ``retype``, ``widen``, ``relax``, ``tighten``, ``add_index``,
    ``drop_index``, ``rekey``, ``meta``, ``encrypt``); ``path`` is the spec field."""

    kind: str
    path: str
    description: str
    destructive: bool

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (what ``POST /api/_schemas/{name}/_plan`` returns)."""
        return {
            "kind": self.kind,
            "path": self.path,
            "description": self.description,
            "destructive": self.destructive,
        }


@dataclass(frozen=True, slots=True)
class Plan:
    """The steps from one definition to another; ``destructive`` when any step is."""

    steps: tuple[Step, ...] = field(default_factory=tuple)

    @property
    def destructive(self) -> bool:
        """Whether applying the change needs a copy of the data (``migrate``)."""
        return any(s.destructive for s in self.steps)

    @property
    def retypes(self) -> bool:
        """Whether an attribute's stored type widens (``int`` to ``float``)."""
        return any(s.kind == "widen" for s in self.steps)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return {"destructive": self.destructive, "steps": [s.to_dict() for s in self.steps]}


def plan_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> Plan:
    """The steps from normalized spec ``old`` to ``new``.

    Example::

        from persisty.dynamic import normalize_spec, plan_changes

        old = normalize_spec({"name": "pets", "attrs": {"id": "str", "age": "int"}})
        new = normalize_spec({"name": "pets", "attrs": {"id": "str", "age": "float"}})
        plan = plan_changes(old, new)
        assert not plan.destructive and plan.steps[0].kind == "widen"
    """
    steps: list[Step] = []
    if old["key"] != new["key"]:
        steps.append(
            Step("rekey", "key", f"the key changes from {old['key']} to {new['key']}", True)
        )
    _diff_attrs(old["attrs"], new["attrs"], "attrs", steps)
    old_ix = [(tuple(i["attrs"]), i["unique"]) for i in old["indexes"]]
    new_ix = [(tuple(i["attrs"]), i["unique"]) for i in new["indexes"]]
    for n, ix in enumerate(new["indexes"]):
        if new_ix[n] not in old_ix:
            steps.append(
                Step(
                    "add_index",
                    f"indexes.{n}",
                    f"create {'unique ' if ix['unique'] else ''}index on {', '.join(ix['attrs'])}",
                    False,
                )
            )
    for n, ix in enumerate(old["indexes"]):
        if old_ix[n] not in new_ix:
            steps.append(
                Step(
                    "drop_index",
                    f"indexes.{n}",
                    f"stop maintaining the index on {', '.join(ix['attrs'])}",
                    False,
                )
            )
    if sorted(old["encrypted"]) != sorted(new["encrypted"]):
        steps.append(
            Step(
                "encrypt",
                "encrypted",
                "the encrypted attributes change: stored values must be rewritten",
                True,
            )
        )
    for f in ("label", "summary", "ttl", "policy", "description"):
        if old.get(f) != new.get(f):
            steps.append(Step("meta", f, f"{f} changes", False))
    return Plan(tuple(steps))


def _diff_attrs(
    old: Mapping[str, Any], new: Mapping[str, Any], path: str, steps: list[Step]
) -> None:
    for name, a in new.items():
        where = f"{path}.{name}"
        if name not in old:
            fills = a["optional"] or "default" in a or a.get("generated")
            steps.append(
                Step(
                    "add_attr",
                    where,
                    f"add {name} ({a['type']})"
                    + ("" if fills else ": required without a default, existing items have none"),
                    not fills,
                )
            )
            continue
        _diff_attr(old[name], a, where, steps)
    for name in old:
        if name not in new:
            steps.append(Step("drop_attr", f"{path}.{name}", f"drop {name} and its values", True))


def _diff_attr(a: Mapping[str, Any], b: Mapping[str, Any], path: str, steps: list[Step]) -> None:
    if a["type"] != b["type"]:
        if (a["type"], b["type"]) == ("int", "float"):
            steps.append(Step("widen", f"{path}.type", "int becomes float", False))
        else:
            steps.append(Step("retype", f"{path}.type", f"{a['type']} becomes {b['type']}", True))
            return
    if a.get("generated") != b.get("generated"):
        steps.append(Step("retype", f"{path}.generated", "the generator changes", True))
    if a["optional"] and not b["optional"]:
        steps.append(Step("tighten", f"{path}.optional", "becomes required", True))
    elif b["optional"] and not a["optional"]:
        steps.append(Step("relax", f"{path}.optional", "becomes optional", False))
    if a["type"] == "enum":
        lost = [v for v in a["values"] if v not in b["values"]]
        gained = [v for v in b["values"] if v not in a["values"]]
        if lost:
            steps.append(Step("tighten", f"{path}.values", f"values {lost} go", True))
        if gained:
            steps.append(Step("relax", f"{path}.values", f"values {gained} are added", False))
    _diff_bounds(a, b, path, steps)
    if a["type"] == "list" and b["type"] == "list":
        _diff_attr(a["items"], b["items"], f"{path}.items", steps)
    if "attrs" in a or "attrs" in b:
        if "attrs" in a and "attrs" in b:
            _diff_attrs(a["attrs"], b["attrs"], f"{path}.attrs", steps)
        elif "attrs" in a:
            steps.append(Step("relax", f"{path}.attrs", "any object is accepted", False))
        else:
            steps.append(Step("tighten", f"{path}.attrs", "objects get a structure", True))
    if a.get("default") != b.get("default"):
        steps.append(Step("meta", f"{path}.default", "the default changes (for new items)", False))
    for flag in ("creatable", "updatable", "readable", "sortable", "description"):
        if a.get(flag) != b.get(flag):
            steps.append(Step("meta", f"{path}.{flag}", f"{flag} changes", False))
    if a.get("expires") != b.get("expires"):
        steps.append(Step("retype", f"{path}.expires", "the expiry attribute changes", True))


def _diff_bounds(a: Mapping[str, Any], b: Mapping[str, Any], path: str, steps: list[Step]) -> None:
    # (constraint, whether a larger new value relaxes it)
    for c, larger_relaxes in (
        ("max_length", True),
        ("le", True),
        ("lt", True),
        ("min_length", False),
        ("ge", False),
        ("gt", False),
    ):
        old, new = a.get(c), b.get(c)
        if old == new:
            continue
        relaxed = new is None or (old is not None and (new > old) == larger_relaxes)
        steps.append(
            Step(
                "relax" if relaxed else "tighten",
                f"{path}.{c}",
                f"{c} changes from {old} to {new}",
                not relaxed,
            )
        )
    if a.get("pattern") != b.get("pattern"):
        relaxed = b.get("pattern") is None
        steps.append(
            Step(
                "relax" if relaxed else "tighten",
                f"{path}.pattern",
                "the pattern changes",
                not relaxed,
            )
        )
