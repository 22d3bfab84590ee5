"""Which side of a layer wraps a store: every factory (``cached``, ``secured``, ``encrypted``,
``observed``, ``related``) gives an async layer for an async store and a sync one for a sync
store, and refuses anything else with the same error."""

from __future__ import annotations

from typing import Any

from persisty.store import AsyncStore, Store


def is_async(store: Any, factory: str) -> bool:
    """``True`` for an async store, ``False`` for a sync one; a ``TypeError`` naming
    ``factory`` for anything else."""
    if isinstance(store, AsyncStore):
        return True
    if isinstance(store, Store):
        return False
    raise TypeError(f"{factory}() wraps a Store, not {type(store).__name__}")
