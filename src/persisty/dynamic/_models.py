"""The stored types of the catalog: definitions (with tombstones) and its change counter."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from persisty.errors import PreconditionFailed, ValidationError
from persisty.model import Attr, etag, stored


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
    layout: list[str] = Attr(default_factory=list)
    """The spec's attribute paths in declared order (stored dicts come back sorted)."""
    created_at: datetime = Attr(generated="created", default=None)
    updated_at: datetime = Attr(generated="updated", default=None)


@stored(name="dynamic_serial")
class CatalogSerial:
    """Incremented on every change of the catalog: what other processes poll."""

    id: str
    serial: int = 0


SERIAL_KEY = "catalog"


def matched(d: Definition, if_match: str | None) -> str:
    """``d``'s etag; ``PreconditionFailed`` when ``if_match`` names another one."""
    tag = etag(d)
    if if_match is not None and if_match != tag:
        raise PreconditionFailed(f"{d.name} changed since etag {if_match!r}", field="if_match")
    return tag


def same_name(name: str, norm: Mapping[str, Any]) -> None:
    """A changed definition keeps its name."""
    if norm["name"] != name:
        raise ValidationError(f"name: a definition keeps its name ({name!r})", field="name")


def next_generation(d: Definition) -> int:
    """The data generation after every one ``d`` has had (live or retired)."""
    return max([d.generation, *(int(r["generation"]) for r in d.retired)]) + 1
