"""The operators of event sequences, by name, and folding events onto a state.

Ops are stored by name (``"setitem"``, ``"add"`` …), never pickled. ``operator.*``
functions are accepted wherever an op is and mapped to their names; :func:`register_op`
adds a custom op under a name of its own.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from persisty.errors import ValidationError


@dataclass(frozen=True, slots=True)
class Op:
    """One operator: ``fn(old, value)`` (``fn(old)`` when ``unary``)."""

    name: str
    fn: Callable[..., Any]
    unary: bool = False


_BINARY = ("add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "concat")
_UNARY = ("neg", "not_")

OPS: dict[str, Op] = {
    "setitem": Op("setitem", operator.setitem),
    "delitem": Op("delitem", operator.delitem, unary=True),
    **{n: Op(n, getattr(operator, n)) for n in _BINARY},
    **{n: Op(n, getattr(operator, n), unary=True) for n in _UNARY},
}
_BY_FN: dict[Any, str] = {op.fn: name for name, op in OPS.items()}
SNAPSHOT = "snapshot"


def register_op(name: str, fn: Callable[..., Any], *, unary: bool = False) -> None:
    """Make ``fn`` usable as an event op stored as ``name`` (``fn(old, value)``, or
    ``fn(old)`` when ``unary``). Register the same op in every process that reads them.

    Example::

        register_op("max", max)
        log.apply("scores", {"best": 10})
        log.apply("scores", {"best": ("max", 17)})   # or {"best": (max, 17)}: 17
    """
    if not isinstance(name, str) or not name or (name in OPS and OPS[name].fn is not fn):
        raise ValidationError(f"op name {name!r} is empty or taken", field="op")
    if not callable(fn):
        raise ValidationError("an op must be callable", field="op")
    OPS[name] = Op(name, fn, unary)
    _BY_FN[fn] = name


def op_name(op: Any, item: str = "op") -> str:
    """The stored name of ``op`` (a registered function or name)."""
    if isinstance(op, str):
        if op in OPS:
            return op
    else:
        try:
            name = _BY_FN.get(op)
        except TypeError:
            name = None
        if name is not None:
            return name
    raise ValidationError(
        f"{item}: unknown op {op!r} (operator.* functions, or one added with register_op)",
        field=item,
    )


def op_function(name: str) -> Any:
    """The function of a stored op name (the name itself when it is not registered here)."""
    found = OPS.get(name)
    return found.fn if found is not None else name


def is_op(candidate: Any) -> bool:
    """Whether ``candidate`` names an op (a registered function or name)."""
    try:
        return candidate in _BY_FN or (isinstance(candidate, str) and candidate in OPS)
    except TypeError:
        return False


def parse_changes(changes: Mapping[str, Any]) -> list[tuple[str, str, Any]]:
    """``{item: value | (op, value)}`` as ``[(item, op name, value)]``; ``ValidationError``
    naming the item for a bad one."""
    if not isinstance(changes, Mapping):
        raise ValidationError("changes must be a dict {item: value | (op, value)}", field="changes")
    result: list[tuple[str, str, Any]] = []
    for item, change in changes.items():
        if not isinstance(item, str):
            raise ValidationError(f"item names are strings, not {item!r}", field="changes")
        if (
            isinstance(change, tuple)
            and 1 <= len(change) <= 2
            and (callable(change[0]) or is_op(change[0]))
        ):
            name = op_name(change[0], item)
            value = change[1] if len(change) == 2 else None
            if OPS[name].unary:
                value = None
        else:
            name, value = "setitem", change
        result.append((item, name, value))
    return result


def fold(state: dict[str, Any], changes: Iterable[tuple[str, str, Any]]) -> dict[str, Any]:
    """Apply ``changes`` to ``state`` in place; ``ValidationError`` naming the item when
    one cannot be applied (a missing item, a type error, a division by zero …)."""
    for item, name, value in changes:
        op = OPS.get(name)
        if op is None:
            raise ValidationError(
                f"{item}: op {name!r} is not registered in this process", field=item
            )
        try:
            if name == "setitem":
                state[item] = value
            elif name == "delitem":
                del state[item]
            elif op.unary:
                state[item] = op.fn(state[item])
            else:
                state[item] = op.fn(state[item], value)
        except KeyError:
            raise ValidationError(f"{item}: no such item to apply {name} to", field=item) from None
        except (TypeError, ValueError, ArithmeticError) as e:
            raise ValidationError(f"{item}: cannot apply {name}: {e}", field=item) from None
    return state
