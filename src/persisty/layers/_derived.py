"""Re-declaring a stored class's field in a class derived from it (sealed, sharded)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any


def redeclared(f: dataclasses.Field[Any], metadata: Mapping[str, Any]) -> Any:
    """The class-body value that gives a derived class ``f``'s default (or factory) with
    ``metadata``; ``dataclasses.MISSING`` when the field needs no value there."""
    if f.default_factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=f.default_factory, metadata=metadata)
    if f.default is not dataclasses.MISSING:
        return dataclasses.field(default=f.default, metadata=metadata)
    if metadata:
        return dataclasses.field(metadata=metadata)
    return dataclasses.MISSING
