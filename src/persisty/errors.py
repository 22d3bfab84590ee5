"""One hierarchy of errors, each with a stable ``code`` that the REST layer maps to a status.

Example::

    from persisty.errors import NotFound
    try:
        notes.delete(str(uuid4()))          # no such note
    except NotFound as e:
        assert e.code == "not_found"
"""

from __future__ import annotations


class PersistyError(Exception):
    """Base of every error persisty raises on purpose. ``code`` is stable across releases."""

    code = "error"
    status = 500

    def __init__(self, message: str = "", *, field: str | None = None) -> None:
        super().__init__(message or self.code)
        self.message = message or self.code
        self.field = field

    def to_dict(self) -> dict[str, str | None]:
        """The JSON shape used by the REST API: ``{code, message, field}``."""
        return {"code": self.code, "message": self.message, "field": self.field}


class ValidationError(PersistyError, ValueError):
    """Bad input: a value, a filter, a key or a page key. ``field`` names the attribute."""

    code = "validation_error"
    status = 422


class NotFound(PersistyError, KeyError):
    """The item does not exist (or the caller may not know it exists)."""

    code = "not_found"
    status = 404

    def __str__(self) -> str:  # KeyError would quote the message
        return self.message


class Conflict(PersistyError):
    """A write clashes with stored state: duplicate key, unique index, concurrent change."""

    code = "conflict"
    status = 409


class ConcurrentChange(Conflict):
    """A concurrent write collided with this one and the engine rolled this one back (a
    deadlock, a serialization failure): nothing of it was written, so trying again is safe.
    Stores try again themselves a few times before raising it."""


class PreconditionFailed(Conflict):
    """An ``if_match`` etag or a ``precondition`` filter did not hold; nothing was written."""

    code = "precondition_failed"
    status = 412


class Forbidden(PersistyError):
    """The principal may not perform this action."""

    code = "forbidden"
    status = 403


class Unauthorized(PersistyError):
    """No valid credentials were presented."""

    code = "unauthorized"
    status = 401


class Unavailable(PersistyError):
    """The engine cannot be reached or refused the request for reasons outside the caller's."""

    code = "unavailable"
    status = 503


class IntegrityError(PersistyError):
    """Stored data failed an integrity check (tampered ciphertext, broken reference)."""

    code = "integrity_error"
    status = 500


__all__ = [
    "Conflict",
    "Forbidden",
    "IntegrityError",
    "NotFound",
    "PersistyError",
    "PreconditionFailed",
    "Unauthorized",
    "Unavailable",
    "ValidationError",
]
