"""Request and response bodies of the auth area."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import marshmallow as ma

from api.schemas import OutSchema, StrictSchema
from models.identity import names as naming

USERNAME = ma.validate.Regexp(naming.USERNAME_RE, error=naming.USERNAME_RULE)
PASSWORD = ma.validate.Length(min=10, max=128, error="Use between {min} and {max} characters.")


def refuse(problem: Callable[[str], str | None]) -> Callable[[str], None]:
    """A field validator from a function that says what is wrong with a value, or None."""

    def validate(value: str) -> None:
        message = problem(value)
        if message is not None:
            raise ma.ValidationError(message)

    return validate


class Nfkc(ma.fields.String):
    """A string NFKC-normalised and stripped before it is validated (full-width to ASCII)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        return naming.nfkc(super()._deserialize(value, attr, data, **kwargs))


class NfkcEmail(ma.fields.Email):
    """An email address NFKC-normalised and stripped before it is validated."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        return naming.nfkc(super()._deserialize(value, attr, data, **kwargs))


class RegisterIn(StrictSchema):
    """A new account; the name is kept as typed and compared ignoring case and width."""

    email = NfkcEmail(
        required=True,
        validate=[ma.validate.Length(max=254), refuse(naming.public_email_problem)],
        metadata={
            "description": "On a public domain (no IP literal, localhost or special-use TLD "
            "such as .test or .local); the part before the @ in ASCII. Unique ignoring case."
        },
    )
    username = Nfkc(
        required=True,
        validate=USERNAME,
        metadata={"description": "Shown as typed; unique ignoring case and width."},
    )
    password = ma.fields.String(required=True, load_only=True, validate=PASSWORD)


class LoginIn(StrictSchema):
    """Credentials: ``login`` is an email or a username."""

    login = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=254))
    password = ma.fields.String(
        required=True, load_only=True, validate=ma.validate.Length(min=1, max=1024)
    )


class SessionOut(OutSchema):
    """One login session."""

    id = ma.fields.UUID()
    created_at = ma.fields.DateTime()
    last_seen_at = ma.fields.DateTime()
    expires_at = ma.fields.DateTime()
    ip = ma.fields.String(allow_none=True)
    user_agent = ma.fields.String(allow_none=True)
    current = ma.fields.Boolean(metadata={"description": "The session of the calling token"})


class TokensOut(OutSchema):
    """A token pair and the session it belongs to."""

    access_token = ma.fields.String()
    refresh_token = ma.fields.String()
    token_type = ma.fields.String(metadata={"description": "Always 'Bearer'"})
    expires_in = ma.fields.Integer(metadata={"description": "Access token lifetime, seconds"})
    session = ma.fields.Nested(SessionOut)
    deletion_cancelled = ma.fields.Boolean(
        dump_default=False,
        metadata={"description": "True when this login cancelled the account's pending deletion"},
    )


class RevokedOut(OutSchema):
    """How many sessions a bulk revocation ended."""

    revoked = ma.fields.Integer()


class ForgotIn(StrictSchema):
    """Who forgot their password."""

    email = NfkcEmail(required=True, validate=ma.validate.Length(max=254))


class ResetIn(StrictSchema):
    """A reset token from the email, and the new password."""

    token = ma.fields.String(required=True, load_only=True, validate=ma.validate.Length(max=128))
    new_password = ma.fields.String(required=True, load_only=True, validate=PASSWORD)


class PasswordChangeIn(StrictSchema):
    """The current password (again) and the new one."""

    current_password = ma.fields.String(
        required=True, load_only=True, validate=ma.validate.Length(min=1, max=1024)
    )
    new_password = ma.fields.String(required=True, load_only=True, validate=PASSWORD)


class AcceptedOut(OutSchema):
    """The request was taken; what happens next is in the message."""

    message = ma.fields.String()
