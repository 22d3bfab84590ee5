"""The stored types of the catalog: definitions (with tombstones) and its change counter."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from persisty.model import Attr, stored


@stored(key="name", name="dynamic_definition")
class Definition:
    """One runtime-defined store: its normalized spec, the version of the spec, the data
    generation holding its items, and its state: ``live``, ``fenced`` (a destructive
    migration is copying: writes are refused) or ``dropped`` (a tombstone)."""

    name: str
    version: int = 1
    generation: int = 1
    epoch: int = 1
    """Incremented by every destructive change: a store opened before it refuses writes."""
    spec: dict[str, Any] = Attr(default_factory=dict)
    state: str = "live"
    owner: str | None = None
    shared: list[str] = Attr(default_factory=list)
    """Scopes whose principals may see and use the store (besides its owner)."""
    retired: list[dict[str, Any]] = Attr(default_factory=list)
    """Earlier data generations (``{"generation", "spec"}``) kept until ``gc()``."""
    created_at: datetime = Attr(generated="created", default=None)
    updated_at: datetime = Attr(generated="updated", default=None)


@stored(name="dynamic_serial")
class CatalogSerial:
    """Incremented on every change of the catalog: what other processes poll."""

    id: str
    serial: int = 0


SERIAL_KEY = "catalog"
