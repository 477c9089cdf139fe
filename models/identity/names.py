"""How account names are shown and how they are compared.

Every email and username has two forms:

- the **display** form, stored in ``users.email`` / ``users.username``: the name as
  typed, NFKC-normalised (full-width letters become ASCII, ligatures split), with the
  email's domain lower-cased and IDNA-encoded to its ASCII form (``xn--…``) so the
  stored address can go to any SMTP server as is;
- the **key**, stored in ``users.email_key`` / ``users.username_key`` under a unique
  index: the display form case-folded (and NFKC'd again, since folding can undo it).
  Uniqueness and every lookup (login, password reset, admin search) use the key.

Usernames are ASCII letters, digits, ``_``, ``-`` and ``.``; email local parts are
printable ASCII. So the look-alikes that normalisation cannot fold (``İ``, a Cyrillic
``a``, U+0430) are refused rather than compared. :func:`public_email_problem` is the stricter
rule for addresses the API accepts for a new account: a public DNS name that can
receive mail from the internet (no IP literal, single label or special-use TLD).
"""

from __future__ import annotations

import re
import unicodedata

import idna

USERNAME_MIN, USERNAME_MAX = 3, 32
EMAIL_MAX = 254
# New names start with a letter or digit; the database's check (ck_users_username_format)
# only limits the characters, since names made before this rule may start with "_".
USERNAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{2,31}$")
USERNAME_RULE = (
    "Use 3-32 characters: ASCII letters, digits, '_', '-' or '.', starting with a letter or digit."
)
# RFC 5322 dot-atom: printable ASCII except specials, dots only between characters.
_LOCAL_RE = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_LABEL_RE = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_TLD_RE = re.compile(r"[a-z]{2,63}|xn--[a-z0-9-]{1,59}")
# Special-use and reserved names that never receive mail from the internet
# (RFC 2606, 6761, 6762, 7686, 8375, 9476, and ICANN's .internal).
RESERVED_TLDS = frozenset(
    {"test", "example", "invalid", "localhost", "local", "onion", "alt", "internal", "arpa"}
)


def nfkc(text: str) -> str:
    """``text`` NFKC-normalised, surrounding white space removed."""
    return unicodedata.normalize("NFKC", text).strip()


def fold(text: str) -> str:
    """The comparison form of ``text``: NFKC, case-folded, NFKC again."""
    return unicodedata.normalize("NFKC", nfkc(text).casefold())


def username_key(username: str) -> str:
    """The key a username is unique under and looked up by."""
    return fold(username)


def ascii_domain(domain: str) -> str:
    """``domain`` as lower-case ASCII LDH labels, or ValueError.

    IDNA 2008 with the UTS #46 mapping: ``Bücher.DE`` becomes ``xn--bcher-kva.de``
    (and ``straße.de`` stays distinct from ``strasse.de``, unlike Python's IDNA 2003 codec).
    """
    try:
        encoded = idna.encode(domain, uts46=True).decode("ascii").lower()
    except UnicodeError as exc:  # idna.IDNAError: empty or long label, bad code point
        raise ValueError(f"{domain!r} is not a valid domain name") from exc
    if not all(_LABEL_RE.fullmatch(label) for label in encoded.split(".")):
        raise ValueError(f"{domain!r} is not a valid domain name")  # e.g. a trailing dot
    return encoded


def split_email(email: str) -> tuple[str, str]:
    """``(local part, domain)`` of the NFKC form of ``email`` (split at the last ``@``)."""
    local, _, domain = nfkc(email).rpartition("@")
    return local, domain


def email_key(email: str) -> str:
    """The key an email is unique under and looked up by; never raises."""
    local, domain = split_email(email)
    try:
        domain = ascii_domain(domain)
    except ValueError:
        domain = fold(domain)  # matches no stored key: those have encodable domains
    return f"{fold(local)}@{domain}"


def display_email(email: str) -> str:
    """The stored form: local part as typed (NFKC), domain lower-case ASCII."""
    local, domain = split_email(email)
    return f"{local}@{ascii_domain(domain)}"


def username_problem(username: str) -> str | None:
    """Why ``username`` (already NFKC'd) cannot be registered, or None."""
    return None if USERNAME_RE.fullmatch(username) else USERNAME_RULE


def email_problem(email: str) -> str | None:
    """Why ``email`` is not a well-formed address we can store, or None.

    The local part must be ASCII; the domain must encode to ASCII (IDNA) and the
    stored form fit in 254 characters. Internal domains (``botyard.local``) pass.
    """
    local = split_email(email)[0]
    if not _LOCAL_RE.fullmatch(local) or len(local) > 64:
        return "Before the @, use at most 64 ASCII letters, digits or symbols such as . _ + -"
    try:
        stored = display_email(email)
    except ValueError:
        return "The part after the @ is not a valid domain name."
    if len(stored) > EMAIL_MAX:
        return f"Use at most {EMAIL_MAX} characters (with the domain in its ASCII form)."
    return None


def public_email_problem(email: str) -> str | None:
    """:func:`email_problem`, and the domain must be a public DNS name that takes mail.

    Refused: IP literals, single-label hosts, ``localhost`` and special-use TLDs
    (``.test``, ``.local``, ``.invalid``, …).
    """
    problem = email_problem(email)
    if problem is not None:
        return problem
    labels = display_email(email).rpartition("@")[2].split(".")
    if len(labels) < 2 or not _TLD_RE.fullmatch(labels[-1]):  # a single label, an IP address
        return "Use an email address on a public domain name (like example.org)."
    if labels[-1] in RESERVED_TLDS:
        return f"Addresses under .{labels[-1]} cannot receive mail from the internet."
    return None
