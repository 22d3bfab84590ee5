"""A patch in one script call (``PATCH`` in ``_scripts.py``), without a read: what a patch of
some attributes needs from the store (its plan) and the script's arguments for its values.
Plain sync code shared by the async and the sync store.

Each changed value is checked on its own (as :meth:`StoreMeta.build` checks it inside a
whole item) and sent as its canonical JSON text, which the script splices into the stored
document, so the document stays exactly what :meth:`StoreMeta.encode` gives for the new
item (no number is ever re-encoded on the server). An ``Increment`` of an int attribute
that no unique index holds is added by the script itself (exactly, up to 15 digits; the
script encodes the sum for the indexes holding it). The etag
is left empty: it is the content hash of the document, computed by whoever reads it
(``etag(item)`` of the returned item is that hash), and a conditional write that finds
it empty fills it in first (``FILL``) and tries again.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import msgspec

from persisty.backends.redis import _encoding as enc
from persisty.backends.redis._layout import Layout
from persisty.model import StoreMeta
from persisty.store import Increment, ValueChecks
from persisty.store import value_checks as store_value_checks


@dataclasses.dataclass(frozen=True)
class PatchPlan:
    """How a patch of one tuple of attribute names runs as one script call."""

    changed: tuple[str, ...]
    """The attributes the patch names, in its order."""
    stamps: tuple[str, ...]
    """``generated="updated"`` attributes the patch sets to the write time."""
    json_names: dict[str, bytes]
    """Each written attribute's name as a JSON string (as it is in the document)."""
    addable: frozenset[str]
    """Attributes the script adds an ``Increment`` to (int, in no unique index)."""
    moves: tuple[tuple[bytes, bytes, tuple[tuple[bytes, str], ...]], ...]
    """Per index holding a written attribute: its name, its number of components and the
    (1-based position, attribute) of each component the patch replaces."""


def value_checks(meta: StoreMeta) -> ValueChecks | None:
    """The per-attribute checks of patch values, or ``None`` when a value cannot be checked
    without the rest of the item (a ``__post_init__``, unresolvable hints) or the model
    expires (its expiry is stamped on every write: the read path does that)."""
    if meta.expires is not None:
        return None
    return store_value_checks(meta)


def patch_plan(layout: Layout, changed: tuple[str, ...]) -> PatchPlan | None:
    """The plan of patches naming ``changed`` (checked names), or ``None`` when such a patch
    needs the stored item in Python (a path, a unique index, a key attribute)."""
    meta = layout.meta
    if any(n not in meta.by_name or n in meta.key.attrs for n in changed):
        return None
    stamps = tuple(a.name for a in meta.attrs if a.generated == "updated" and a.name not in changed)
    written = set(changed) | set(stamps)
    if any(a in written for ix in layout.unique for a in ix.attrs[: ix.own]):
        return None
    moves = []
    for ix in layout.indexes[1:]:  # (the key set holds key attributes only)
        reps = tuple(
            (str(pos + 1).encode(), a) for pos, a in enumerate(ix.attrs[: ix.own]) if a in written
        )
        if reps:
            moves.append((ix.name.encode(), str(len(ix.attrs)).encode(), reps))
    return PatchPlan(
        changed,
        stamps,
        {n: msgspec.json.encode(n) for n in (*changed, *stamps)},
        frozenset(n for n in changed if meta.by_name[n].kind == "int"),
        tuple(moves),
    )


def patch_args(
    layout: Layout,
    checks: ValueChecks,
    plan: PatchPlan,
    raw: bytes,
    changes: Mapping[str, Any],
    now: Any,
) -> list[bytes] | None:
    """The ``PATCH`` script's arguments, or ``None`` when a value does not pass its check
    or is an increment the script does not do (the read path then decides)."""
    checked = checks.checked
    fields: list[bytes] = []
    values: dict[str, Any] = {}
    added: dict[str, bytes] = {}  # incremented attribute -> its field number
    names = plan.json_names
    for n in plan.changed:
        v = changes[n]
        if type(v) is Increment:
            by = v.by
            if n not in plan.addable or type(by) is not int or not -(10**15) < by < 10**15:
                return None
            fields += (names[n], b"+", b"%d" % by)
            added[n] = b"%d" % (len(fields) // 3)
            continue
        got = checked(n, v)
        if got is None:
            return None
        values[n] = got[0]
        fields += (names[n], b"=", got[1].encode())
    for n in plan.stamps:
        got = checked(n, now)
        if got is None:
            return None
        values[n] = got[0]
        fields += (names[n], b"=", got[1].encode())
    args = [layout.b, raw, b"%d" % (len(fields) // 3), *fields, b"%d" % len(plan.moves)]
    try:
        for name, ncomp, reps in plan.moves:
            args += (name, ncomp, b"%d" % len(reps))
            for pos, a in reps:
                if a in added:  # the script encodes the sum
                    args += (pos, added[a], b"")
                else:
                    args += (pos, b"0", enc.encode(values[a]))
    except (TypeError, ValueError):  # a value no index can hold: the read path says so
        return None
    return args
