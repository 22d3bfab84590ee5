"""Runtime-defined stores: a catalog of definitions kept as data, each served as a Store of
a generated ``@stored`` class, changed online (additive) or by a fenced copy (destructive),
and seen by every process within a bounded staleness.

Example::

    import persisty
    import persisty.dynamic

    db = persisty.connect("memory://")
    cat = persisty.dynamic.catalog(db)
    cat.define({"name": "contacts", "key": "email",
                "attrs": {"email": {"type": "str", "max_length": 200},
                          "age": {"type": "int", "optional": True}}})
    contacts = cat.store("contacts")
    contacts.create({"email": "ann@example.com", "age": 41})
    assert contacts.count(persisty.F.age >= 18) == 1
"""

from __future__ import annotations

from typing import Any, overload

from persisty.dynamic._async.catalog import AsyncCatalog, AsyncEntry
from persisty.dynamic._async.importer import import_rows as import_rows_async
from persisty.dynamic._async.store import AsyncDynamicStore
from persisty.dynamic._classes import build_class, physical_name, user_facing
from persisty.dynamic._jsonschema import spec_from_json_schema, spec_to_json_schema
from persisty.dynamic._models import Definition
from persisty.dynamic._order import in_layout, layout_of
from persisty.dynamic._plan import Plan, Step, plan_changes
from persisty.dynamic._report import ImportReport, MigrationFailed, MigrationReport, RowError
from persisty.dynamic._rows import rows_of
from persisty.dynamic._security import ADMIN_SCOPE, may_change, may_use, policy_of
from persisty.dynamic._spec import RESERVED, TYPES, check_name, normalize_spec
from persisty.dynamic._sync.catalog import Catalog
from persisty.dynamic._sync.importer import import_rows
from persisty.dynamic._sync.store import DynamicStore
from persisty.store import AsyncDatabase, Database


@overload
def catalog(db: Database, **options: Any) -> Catalog: ...


@overload
def catalog(db: AsyncDatabase, **options: Any) -> AsyncCatalog: ...


def catalog(db: Database | AsyncDatabase, **options: Any) -> Catalog | AsyncCatalog:
    """The catalog of runtime-defined stores kept in ``db``: a :class:`Catalog` for a sync
    database, an :class:`AsyncCatalog` for an async one. ``options``: ``principal``,
    ``static``, ``staleness`` (seconds, 1 by default), ``admin_scope``, ``keys``,
    ``batch_size``.

    Example::

        import persisty.dynamic

        cat = persisty.dynamic.catalog(persisty.connect("memory://"), staleness=0.5)
    """
    if isinstance(db, AsyncDatabase):
        return AsyncCatalog(db, **options)
    if isinstance(db, Database):
        return Catalog(db, **options)
    raise TypeError(f"catalog() needs a persisty Database, not {type(db).__name__}")


__all__ = [
    "ADMIN_SCOPE",
    "RESERVED",
    "TYPES",
    "AsyncCatalog",
    "AsyncDynamicStore",
    "AsyncEntry",
    "Catalog",
    "Definition",
    "DynamicStore",
    "ImportReport",
    "MigrationFailed",
    "MigrationReport",
    "Plan",
    "RowError",
    "Step",
    "build_class",
    "catalog",
    "check_name",
    "import_rows",
    "import_rows_async",
    "in_layout",
    "layout_of",
    "may_change",
    "may_use",
    "normalize_spec",
    "physical_name",
    "plan_changes",
    "policy_of",
    "rows_of",
    "spec_from_json_schema",
    "spec_to_json_schema",
    "user_facing",
]
