"""The tables persisty keeps beside the stores' own: ``persisty_meta`` (the page-key
secret every process shares, sequence counters) and ``persisty_outbox`` (changes waiting
for delivery), with the SQL of their statements."""

from __future__ import annotations

import sqlalchemy as sa

from persisty.backends.sql.dialects import Dialect

META_TABLE = "persisty_meta"
OUTBOX_TABLE = "persisty_outbox"


class MetaSchema:
    """The statements of ``persisty_meta``: ``(name, value, num)`` rows by name."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        t = dialect.quote(META_TABLE)
        ph = dialect.ph
        self.sql_create = (
            f"CREATE TABLE IF NOT EXISTS {t} "
            f"(name {dialect.name_sql} PRIMARY KEY, value VARCHAR(200), "
            "num BIGINT)"
        )
        self.sql_add = f"INSERT INTO {t} (name, value) VALUES ({ph}, {ph})"
        """Insert ``(name, value)`` (a duplicate name is a unique violation)."""
        self.sql_delete = f"DELETE FROM {t} WHERE name = {ph}"
        self.sql_get = f"SELECT value FROM {t} WHERE name = {ph}"
        self.sql_skip = f"UPDATE {t} SET num = num + {ph} WHERE name = {ph}"
        """Advance the counter named by the second parameter by the first."""
        self.sql_tables = f"SELECT name, value FROM {t} WHERE name LIKE {ph}"
        """Every store table of the database (parameter ``table:%``): ``table:<table>`` rows,
        valued by namespace."""
        self.sql_counters = f"SELECT name FROM {t} WHERE name LIKE {ph}"
        """Every sequence counter (parameter ``seq:%``): ``seq:<table>:<attribute>`` rows."""
        self.sql_next: list[str] = dialect.sequence_sql(t)
        """Increment the counter named by the parameter; the last statement returns it."""


class OutboxSchema:
    """The outbox table (one per database, shared by the stores of every namespace) and its
    statements: a change is a row written in the transaction of its write, leased to the
    writer until ``claimed_until`` (seconds since the epoch), deleted once delivered."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        d = dialect
        self.table = sa.Table(
            OUTBOX_TABLE,
            sa.MetaData(),
            sa.Column("id", sa.String(32), primary_key=True),
            sa.Column("store", d.name_type(), nullable=False),
            sa.Column("kind", sa.String(10), nullable=False),
            sa.Column("item_key", sa.Text(), nullable=False),
            sa.Column("old", d.doc_type(), nullable=True),
            sa.Column("new", d.doc_type(), nullable=True),
            sa.Column("at", sa.Double(), nullable=False),
            sa.Column("claimed_until", sa.Double(), nullable=False),
        )
        self.index = sa.Index(
            f"ix_{OUTBOX_TABLE}_store_claimed", self.table.c.store, self.table.c.claimed_until
        )
        ph = d.ph
        t = d.quote(OUTBOX_TABLE)
        self.sql_insert = (
            f"INSERT INTO {t} (id, store, kind, item_key, old, new, at, "
            f"claimed_until) VALUES ({', '.join([ph] * 8)})"
        )
        self.sql_due = (
            f"SELECT id, claimed_until FROM {t} WHERE store = {ph} AND "
            f"claimed_until <= {ph} ORDER BY at, id LIMIT {ph}"
        )
        self.sql_claim = (
            f"UPDATE {t} SET claimed_until = {ph} WHERE id = {ph} AND claimed_until = {ph}"
        )
        self.sql_get = f"SELECT kind, item_key, old, new, at FROM {t} WHERE id = {ph}"
        self.sql_delete = f"DELETE FROM {t} WHERE id = {ph}"
        self.sql_count = f"SELECT count(*) FROM {t} WHERE store = {ph}"
        self.sql_delete_store = f"DELETE FROM {t} WHERE store = {ph}"

    def create_sql(self) -> list[str]:
        """``CREATE TABLE`` and ``CREATE INDEX``, each ``IF NOT EXISTS``."""
        sa_d = self.dialect.sa
        return [
            str(
                sa.schema.CreateTable(self.table, if_not_exists=True).compile(dialect=sa_d)
            ).strip(),
            str(
                sa.schema.CreateIndex(self.index, if_not_exists=True).compile(dialect=sa_d)
            ).strip(),
        ]

    def doc(self, raw: bytes | None) -> bytes | str | None:
        """A canonical JSON document as the doc columns hold it."""
        return None if raw is None else self.dialect.doc(raw)
