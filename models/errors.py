"""Domain errors raised by model helpers; ``api/errors.py`` maps each to an HTTP status."""

from __future__ import annotations


class DomainError(Exception):
    """Base class: ``message`` is safe to show to the caller."""

    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(DomainError):
    """The object does not exist, or is not the caller's to see."""

    status = 404


class Conflict(DomainError):
    """The request clashes with the current state (a duplicate, a last admin)."""

    status = 409


class Unauthorized(DomainError):
    """Credentials or tokens are missing, wrong, expired or revoked."""

    status = 401
