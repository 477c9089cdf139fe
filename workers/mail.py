"""Email: templates rendered to plain text and HTML, sent over SMTP from notification jobs.

Mail never leaves from a web request: the API enqueues a job on the ``notifications``
queue and a worker renders and sends it, with RQ retrying (and backing off) when the
SMTP server is unreachable. ``SMTP_URL`` is ``smtp://[user:password@]host:port``
(add ``?starttls=1`` to upgrade the connection) or ``smtps://…`` for implicit TLS.
"""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import structlog
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

log = structlog.get_logger(__name__)

TEMPLATE_DIR = Path(__file__).resolve().parent / "templates" / "email"
SMTP_TIMEOUT_S = 10

SUBJECTS = {
    "password_reset": "Reset your Botyard password",
    "email_change_confirm": "Confirm your new Botyard email address",
    "email_changed_old_address": "Your Botyard email address was changed",
}

_templates = Environment(
    loader=FileSystemLoader(TEMPLATE_DIR),
    autoescape=select_autoescape(["html"]),
    undefined=StrictUndefined,
    keep_trailing_newline=True,
)


@dataclass(frozen=True)
class Email:
    """One rendered message."""

    to: str
    subject: str
    text: str
    html: str


def render(template: str, to: str, **context: Any) -> Email:
    """Render ``<template>.txt`` and ``<template>.html`` for recipient ``to``."""
    return Email(
        to=to,
        subject=SUBJECTS[template],
        text=_templates.get_template(f"{template}.txt").render(**context),
        html=_templates.get_template(f"{template}.html").render(**context),
    )


def build_message(email: Email, sender: str) -> EmailMessage:
    """A multipart/alternative message (text first, HTML preferred by clients that can)."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = email.to
    message["Subject"] = email.subject
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain="botyard.local")
    message.set_content(email.text)
    message.add_alternative(email.html, subtype="html")
    return message


@dataclass(frozen=True)
class SmtpTarget:
    """Where and how to deliver, parsed from ``SMTP_URL``."""

    host: str
    port: int
    implicit_tls: bool
    starttls: bool
    username: str | None
    password: str | None

    @classmethod
    def from_url(cls, url: str) -> SmtpTarget:
        """Parse ``smtp://`` or ``smtps://`` URLs."""
        parts = urlsplit(url)
        implicit_tls = parts.scheme == "smtps"
        options = parse_qs(parts.query)
        return cls(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or (465 if implicit_tls else 25),
            implicit_tls=implicit_tls,
            starttls=options.get("starttls", ["0"])[0] in ("1", "true", "yes"),
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
        )


def send(email: Email, smtp_url: str, sender: str) -> None:
    """Deliver ``email``; raises OSError/SMTPException on failure (the job then retries)."""
    target = SmtpTarget.from_url(smtp_url)
    context = ssl.create_default_context()
    client: smtplib.SMTP
    if target.implicit_tls:
        client = smtplib.SMTP_SSL(target.host, target.port, timeout=SMTP_TIMEOUT_S, context=context)
    else:
        client = smtplib.SMTP(target.host, target.port, timeout=SMTP_TIMEOUT_S)
    with client:
        if target.starttls:
            client.starttls(context=context)
        if target.username:
            client.login(target.username, target.password or "")
        client.send_message(build_message(email, sender))
    # The address's domain is enough to trace delivery; the full address is personal data.
    log.info("email_sent", subject=email.subject, to_domain=email.to.rpartition("@")[2])
