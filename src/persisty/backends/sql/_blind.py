"""A patch without a read (SQL): each changed value is checked on its own
(:class:`persisty.store.ValueChecks`) and written both to its column and, by the engine,
into the stored document, in one ``UPDATE … RETURNING``.

The etag of a row written so is left empty: it is the content hash of the document that
comes back, computed by whoever reads the row (``etag(item)`` of the returned item is that
same hash). A conditional write that finds an empty etag fills it in first (only while the
document is still the one it hashed) and tries again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from persisty.model import StoreMeta
from persisty.store import CHECK_FAILURES, Plain, ValueChecks
from persisty.store import value_checks as _value_checks

FAILURES = CHECK_FAILURES

FastPatch = tuple[str, Plain, bool]
"""A patch's one statement (``UPDATE … RETURNING``), its :data:`Plain` attributes, and
whether each value is bound once as it is (``TableSchema.bound_patch_sql``) rather than as
column value and JSON text."""


def value_checks(
    meta: StoreMeta, convs: dict[str, Callable[[Any], Any] | None]
) -> ValueChecks | None:
    """The checks of ``meta``'s patch values, or ``None`` when a changed value cannot be
    checked without the rest of the item (a ``__post_init__``, expiry stamped on every
    write, or type hints that do not resolve)."""
    if meta.expires is not None:
        return None
    return _value_checks(meta, convs)
