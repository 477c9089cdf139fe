"""Domain errors raised by model helpers; ``api/errors.py`` maps each to an HTTP status."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """Base class: ``message`` (and ``errors``, if any) are safe to show to the caller."""

    status = 400

    def __init__(self, message: str, errors: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.errors = errors


class NotFound(DomainError):
    """The object does not exist, or is not the caller's to see."""

    status = 404


class Conflict(DomainError):
    """The request clashes with the current state (a duplicate, a last admin)."""

    status = 409


class Unauthorized(DomainError):
    """Credentials or tokens are missing, wrong, expired or revoked."""

    status = 401


class Invalid(DomainError):
    """Input that passed the schema but not a domain rule; ``errors`` names the fields."""

    status = 422


class QuotaExceeded(DomainError):
    """The caller already uses everything their role allows."""

    status = 429
