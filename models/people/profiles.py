"""Profiles: the rules for each profile field, editing one's own, and the public view.

Each ``*_problem`` function says what is wrong with a value, or returns None; the API
turns them into field errors (422). Usernames are immutable (docs/accounts.md,
"Profiles"): nothing here changes one.
"""

from __future__ import annotations

import functools
import re
import unicodedata
import uuid
import zoneinfo
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select

from models.db import session as db
from models.errors import NotFound
from models.identity import names as naming
from models.identity.tables import User
from models.people.preferences import effective_settings

DISPLAY_NAME_MAX = 80
BIO_MAX = 1000
AVATAR_URL_MAX = 512
LOCALE_MAX = 35
PROFILE_FIELDS = ("display_name", "bio", "avatar_url", "timezone", "locale")
NOT_FOUND = "No user with that name."

# Direction overrides and isolates re-order what a reader sees: a name could pose as another.
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
# A top-level domain: letters, or an IDNA label (an IP address's last part is digits).
_TLD_RE = re.compile(r"[a-z]{2,63}|xn--[a-z0-9-]{1,59}")
# language[-script][-region](-variant)*: en, en-US, pt-BR, zh-Hant-TW, sl-rozaj, es-419
_LOCALE_RE = re.compile(
    r"(?P<language>[A-Za-z]{2,3})"
    r"(?:-(?P<script>[A-Za-z]{4}))?"
    r"(?:-(?P<region>[A-Za-z]{2}|[0-9]{3}))?"
    r"(?P<variants>(?:-(?:[A-Za-z0-9]{5,8}|[0-9][A-Za-z0-9]{3}))*)"
)


def _hidden_characters(text: str, allowed: str = "") -> bool:
    return any(
        (unicodedata.category(ch) in ("Cc", "Zl", "Zp") and ch not in allowed)
        or ch in _BIDI_CONTROLS
        for ch in text
    )


def display_name_problem(name: str) -> str | None:
    """Why ``name`` (already trimmed) cannot be a display name, or None."""
    if len(name) > DISPLAY_NAME_MAX:
        return f"Use at most {DISPLAY_NAME_MAX} characters."
    if _hidden_characters(name):
        return "Control characters, line breaks and direction overrides are not allowed."
    return None


def bio_problem(bio: str) -> str | None:
    """Why ``bio`` cannot be a bio (line breaks and tabs are fine), or None."""
    if len(bio) > BIO_MAX:
        return f"Use at most {BIO_MAX} characters."
    if _hidden_characters(bio, allowed="\n\r\t"):
        return "Control characters and direction overrides are not allowed."
    return None


def public_host_problem(host: str) -> str | None:
    """Why ``host`` is not a public DNS name (an IP address, ``localhost``, ``.test``), or None."""
    try:
        labels = naming.ascii_domain(host).split(".")
    except ValueError:
        labels = []
    if len(labels) < 2 or not _TLD_RE.fullmatch(labels[-1]):
        return "Use a URL on a public host name (like images.example.org)."
    if labels[-1] in naming.RESERVED_TLDS:
        return f"Hosts under .{labels[-1]} are not reachable from the internet."
    return None


def avatar_url_problem(url: str) -> str | None:
    """Why ``url`` cannot be an avatar URL: https, a public DNS host, no credentials."""
    if len(url) > AVATAR_URL_MAX:
        return f"Use at most {AVATAR_URL_MAX} characters."
    if _hidden_characters(url) or any(ch.isspace() for ch in url):
        return "A URL has no spaces or control characters."
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError:
        return "That is not a valid URL."
    if parts.scheme.lower() != "https":
        return "Use an https:// URL."
    if parts.username is not None or parts.password is not None:
        return "A URL with a user name or password is not allowed."
    return public_host_problem(parts.hostname or "")


@functools.cache
def _timezones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def timezone_problem(name: str) -> str | None:
    """Why ``name`` is not an IANA time zone name (``Europe/Paris``, ``UTC``), or None."""
    if name not in _timezones():
        return "Use an IANA time zone name, such as Europe/Paris or America/New_York."
    return None


def canonical_locale(tag: str) -> str | None:
    """A BCP 47-like tag in its usual case (``pt-br`` -> ``pt-BR``), or None if malformed."""
    if len(tag) > LOCALE_MAX:
        return None
    found = _LOCALE_RE.fullmatch(tag)
    if found is None:
        return None
    parts = [found["language"].lower()]
    if found["script"]:
        parts.append(found["script"].title())
    if found["region"]:
        parts.append(found["region"].upper())
    parts.extend(v.lower() for v in found["variants"].split("-") if v)
    return "-".join(parts)


def locale_problem(tag: str) -> str | None:
    """Why ``tag`` is not a language tag such as ``en``, ``en-US`` or ``zh-Hant-TW``, or None."""
    if canonical_locale(tag) is None:
        return (
            f"Use a language tag of at most {LOCALE_MAX} characters, "
            "such as en, en-US, pt-BR or zh-Hant-TW."
        )
    return None


def update_profile(user: User, fields: dict[str, Any]) -> list[str]:
    """Apply validated profile ``fields`` (None clears one); returns the names that changed."""
    changed = []
    for name in PROFILE_FIELDS:
        if name in fields and getattr(user, name) != fields[name]:
            setattr(user, name, fields[name])
            changed.append(name)
    db.flush()
    return changed


def visible_profile(username: str, viewer_id: uuid.UUID | None) -> User:
    """The account behind ``username`` (any case or width) as ``viewer_id`` may see it.

    :class:`NotFound` for no such name, a disabled, deletion-pending or erased account,
    and a private profile seen by anyone but its owner: all look the same from outside.
    """
    if "\x00" in username or len(username) > 4 * naming.USERNAME_MAX:
        raise NotFound(NOT_FOUND)  # Postgres text holds no NUL; no stored key is that long
    user = db.scalars(
        select(User).where(User.username_key == naming.username_key(username))
    ).one_or_none()
    if (
        user is None
        or not user.is_active
        or user.deletion_requested_at is not None
        or user.erased_at is not None
    ):
        raise NotFound(NOT_FOUND)
    if user.id != viewer_id and effective_settings(user.id)["profile_visibility"] != "public":
        raise NotFound(NOT_FOUND)
    return user
