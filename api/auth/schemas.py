"""Request and response bodies of the auth area."""

from __future__ import annotations

import marshmallow as ma

from api.schemas import OutSchema, StrictSchema

USERNAME = ma.validate.Regexp(
    r"^[a-z0-9_]{3,32}$", error="Use 3-32 characters: lower-case letters, digits, underscore."
)
PASSWORD = ma.validate.Length(min=10, max=128, error="Use between {min} and {max} characters.")


class RegisterIn(StrictSchema):
    """A new account."""

    email = ma.fields.Email(required=True, validate=ma.validate.Length(max=254))
    username = ma.fields.String(required=True, validate=USERNAME)
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


class RevokedOut(OutSchema):
    """How many sessions a bulk revocation ended."""

    revoked = ma.fields.Integer()


class ForgotIn(StrictSchema):
    """Who forgot their password."""

    email = ma.fields.Email(required=True, validate=ma.validate.Length(max=254))


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
