"""The SQL backend: ``sqlite:///file.db`` (``sqlite://`` in memory), ``postgresql://…``,
``mysql://…`` / ``mariadb://…``, through SQLAlchemy 2 Core and the engines' own drivers.

The pieces, each replaceable on its own: a :class:`Dialect` per engine (in
``persisty.backends.sql.dialects``), the ``TableSchema`` of each store with its
filter compiler, the executor (pool, transactions, error translation), the tables
(creation, migration) and the outbox.

Example::

    db = persisty.connect("sqlite:///app.db")
    notes = db.store(Note)
"""

from persisty.backends.sql._async.database import AsyncSqlDatabase
from persisty.backends.sql._async.executor import AsyncSqlExecutor
from persisty.backends.sql._async.grouped import AsyncSqlGroups
from persisty.backends.sql._async.outbox import AsyncSqlOutbox, AsyncSqlOutboxStore
from persisty.backends.sql._async.store import AsyncSqlStore
from persisty.backends.sql._async.tables import AsyncSqlTables
from persisty.backends.sql._grouped import SqlAggregate, SqlBucket
from persisty.backends.sql._meta_tables import META_TABLE, OUTBOX_TABLE
from persisty.backends.sql._migrate import Step
from persisty.backends.sql._sync.database import SqlDatabase
from persisty.backends.sql._sync.executor import SqlExecutor
from persisty.backends.sql._sync.grouped import SqlGroups
from persisty.backends.sql._sync.outbox import SqlOutbox, SqlOutboxStore
from persisty.backends.sql._sync.store import SqlStore
from persisty.backends.sql._sync.tables import SqlTables
from persisty.backends.sql._table import TableSchema
from persisty.backends.sql._url import SqlUrl
from persisty.backends.sql.dialects import (
    AsyncDriver,
    Dialect,
    Driver,
    dialect_for,
    parse_url,
    register_dialect,
)

__all__ = [
    "META_TABLE",
    "OUTBOX_TABLE",
    "AsyncDriver",
    "AsyncSqlDatabase",
    "AsyncSqlExecutor",
    "AsyncSqlGroups",
    "AsyncSqlOutbox",
    "AsyncSqlOutboxStore",
    "AsyncSqlStore",
    "AsyncSqlTables",
    "Dialect",
    "Driver",
    "SqlAggregate",
    "SqlBucket",
    "SqlDatabase",
    "SqlExecutor",
    "SqlGroups",
    "SqlOutbox",
    "SqlOutboxStore",
    "SqlStore",
    "SqlTables",
    "SqlUrl",
    "Step",
    "TableSchema",
    "dialect_for",
    "parse_url",
    "register_dialect",
]
