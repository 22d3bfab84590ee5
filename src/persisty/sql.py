"""SQL helpers for users of the SQL backend: the SQLAlchemy ``MetaData`` of a database.

Example::

    import persisty, persisty.sql

    db = persisty.connect("postgresql://postgres@127.0.0.1/app")
    db.store(Note)
    target_metadata = persisty.sql.metadata(db)   # e.g. in Alembic's env.py
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from persisty.errors import ValidationError


def metadata(db: Any, *classes: type[Any]) -> sa.MetaData:
    """The SQLAlchemy ``MetaData`` with a ``Table`` (and its indexes) for every store of
    ``db`` opened so far, plus one for each ``@stored`` class in ``classes``.

    Columns are typed for the database's dialect; ``_etag`` and ``_doc`` are persisty's
    hidden columns (the item's etag, empty after a patch without a read, and its JSON).

    Example::

        md = persisty.sql.metadata(db, Note, User)
        md.tables["note"].c.title
    """
    from persisty.backends.sql import AsyncSqlDatabase, SqlDatabase

    if not isinstance(db, SqlDatabase | AsyncSqlDatabase):
        raise ValidationError(
            "persisty.sql.metadata needs a SQL database (sqlite://, postgresql://, mysql://)",
            field="db",
        )
    for cls in classes:
        db.store(cls)
    result: sa.MetaData = db.metadata
    return result
