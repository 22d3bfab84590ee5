"""What a migration (or an import) reports: counts and one error per rejected row."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from persisty.dynamic._classes import user_facing
from persisty.errors import ValidationError

MAX_ERRORS = 1000


@dataclass(slots=True)
class RowError:
    """Why one row was rejected: its position (1-based), key when known, field, message."""

    line: int
    field: str | None
    message: str
    key: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: ``{line, field, message}`` (and ``key`` when known)."""
        out: dict[str, Any] = {"line": self.line, "field": self.field, "message": self.message}
        if self.key is not None:
            out["key"] = self.key
        return out


@dataclass(slots=True)
class _RowErrors:
    """Rows that failed: the first 1,000 kept, ``failed`` counting them all."""

    failed: int = 0
    errors: list[RowError] = field(default_factory=list)

    def add_error(self, error: RowError) -> None:
        """Record a failed row."""
        self.failed += 1
        if len(self.errors) < MAX_ERRORS:
            self.errors.append(dataclasses.replace(error, message=user_facing(error.message)))


@dataclass(slots=True)
class MigrationReport(_RowErrors):
    """How many rows were copied (or imported) and skipped, and the rows that failed (the
    first 1,000; ``failed`` counts them all)."""

    copied: int = 0
    skipped: int = 0

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return {
            "copied": self.copied,
            "skipped": self.skipped,
            "failed": self.failed,
            "errors": [e.to_dict() for e in self.errors],
        }


class MigrationFailed(ValidationError):
    """Some rows could not be copied: nothing changed (the old version is live);
    ``report.errors`` says which and why."""

    code = "migration_failed"

    def __init__(self, report: MigrationReport) -> None:
        first = report.errors[0] if report.errors else None
        where = f" (first: row {first.line}, {first.field}: {first.message})" if first else ""
        super().__init__(
            f"{report.failed} row(s) could not be copied{where}",
            field=first.field if first else None,
        )
        self.report = report


@dataclass(slots=True)
class ImportReport(_RowErrors):
    """What an import did: how many items were written, and each rejected row's
    ``{line, field, message}`` (the first 1,000; ``failed`` counts them all)."""

    imported: int = 0

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (what ``POST /api/{name}/_import`` answers)."""
        return {
            "imported": self.imported,
            "failed": self.failed,
            "errors": [e.to_dict() for e in self.errors],
        }
