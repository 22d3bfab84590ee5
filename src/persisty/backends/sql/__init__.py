"""The SQL backend: ``sqlite:///file.db`` (``sqlite://`` in memory), ``postgresql://…``,
``mysql://…`` / ``mariadb://…``.

Example::

    db = persisty.connect("sqlite:///app.db")
    notes = db.store(Note)
"""

from persisty.backends.sql._async import AsyncSqlDatabase, AsyncSqlStore
from persisty.backends.sql._sync import SqlDatabase, SqlStore

__all__ = ["AsyncSqlDatabase", "AsyncSqlStore", "SqlDatabase", "SqlStore"]
