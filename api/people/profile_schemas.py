"""Request and response bodies of profiles and email changes."""

from __future__ import annotations

from typing import Any

import marshmallow as ma

from api.auth.schemas import NfkcEmail, refuse
from api.bots.card_schemas import BotCardOut
from api.schemas import OutSchema, StrictSchema
from models.identity import names as naming
from models.people import profiles as rules

# Keys a profile PATCH may not carry, and where to go instead.
IMMUTABLE = {
    "username": "Usernames cannot be changed (docs/accounts.md, 'Profiles').",
    "email": "Change your email with POST /api/v1/me/email (it is confirmed by mail).",
}


class Trimmed(ma.fields.String):
    """A string with surrounding white space removed; blank means null (cleared)."""

    def deserialize(
        self, value: Any, attr: str | None = None, data: Any = None, **kwargs: Any
    ) -> Any:
        if isinstance(value, str) and not value.strip():
            return None
        return super().deserialize(value, attr, data, **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        return super()._deserialize(value, attr, data, **kwargs).strip()


class Locale(ma.fields.String):
    """A BCP 47-like language tag, returned in its usual case (``pt-br`` -> ``pt-BR``)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        canonical = rules.canonical_locale(text)
        if canonical is None:
            raise ma.ValidationError(rules.locale_problem(text) or "Invalid language tag.")
        return canonical


class ProfilePatch(StrictSchema):
    """Any subset of my profile's fields; null (or an empty string) clears one."""

    display_name = Trimmed(
        allow_none=True,
        validate=refuse(rules.display_name_problem),
        metadata={"description": f"At most {rules.DISPLAY_NAME_MAX} characters, trimmed"},
    )
    bio = ma.fields.String(
        allow_none=True,
        validate=refuse(rules.bio_problem),
        metadata={"description": f"At most {rules.BIO_MAX} characters; line breaks allowed"},
    )
    avatar_url = Trimmed(
        allow_none=True,
        validate=refuse(rules.avatar_url_problem),
        metadata={"description": "An https URL on a public host, at most 512 characters"},
    )
    timezone = ma.fields.String(
        allow_none=True,
        validate=refuse(rules.timezone_problem),
        metadata={"description": "An IANA time zone name, e.g. Europe/Paris"},
    )
    locale = Locale(
        allow_none=True,
        metadata={"description": "A language tag such as en, en-US, pt-BR or zh-Hant-TW"},
    )

    @ma.pre_load
    def _take_immutable_aside(self, data: Any, **_kwargs: Any) -> Any:
        # Named errors for these two, rather than RAISE's generic "Unknown field."
        if isinstance(data, dict) and any(key in data for key in IMMUTABLE):
            raise ma.ValidationError({key: [why] for key, why in IMMUTABLE.items() if key in data})
        return data


class ProfileCountsOut(OutSchema):
    """How many public bots, followers and followed accounts a profile has."""

    public_bots = ma.fields.Integer()
    followers = ma.fields.Integer()
    following = ma.fields.Integer()


class PublicProfileOut(OutSchema):
    """Someone's public profile: display fields only (never email, settings or roles)."""

    username = ma.fields.String()
    display_name = ma.fields.String(allow_none=True)
    bio = ma.fields.String(allow_none=True)
    avatar_url = ma.fields.String(allow_none=True)
    joined_at = ma.fields.DateTime(attribute="created_at")
    public_bots = ma.fields.List(
        ma.fields.Nested(BotCardOut),
        metadata={
            "description": "The user's public bots that are running or paused (not hidden by "
            "moderation), newest first, as their cards"
        },
    )
    counts = ma.fields.Nested(ProfileCountsOut)


class EmailChangeIn(StrictSchema):
    """The address to move to, and my password (again)."""

    new_email = NfkcEmail(
        required=True,
        validate=[ma.validate.Length(max=254), refuse(naming.public_email_problem)],
        metadata={"description": "On a public domain, as at registration; unique ignoring case"},
    )
    password = ma.fields.String(
        required=True, load_only=True, validate=ma.validate.Length(min=1, max=1024)
    )


class EmailConfirmIn(StrictSchema):
    """The token from the confirmation link (the part after ``#token=``)."""

    token = ma.fields.String(required=True, load_only=True, validate=ma.validate.Length(max=128))


class EmailOut(OutSchema):
    """The account's email address now."""

    email = ma.fields.String()
