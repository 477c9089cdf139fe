"""Notification emails: one template pair per event, their subjects, and the daily digest.

Templates live in ``workers/templates/email/events/<event>.txt|.html`` on a shared
layout; the subjects are here, in :data:`EVENT_SUBJECTS`. ``data`` is whatever the
code that called ``notify()`` passed: templates read it with defaults, so a missing
field shows a placeholder rather than losing the email. HTML is autoescaped.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, Undefined, select_autoescape

from models.people.events import EVENTS
from workers.mail import TEMPLATE_DIR, Email

# Subject lines: Jinja expressions over the same context as the bodies (never HTML).
EVENT_SUBJECTS: dict[str, str] = {
    "backtest.finished": "Backtest finished: {{ data.bot_name | default('inline strategy', true) }}"
    " on {{ data.symbol | default('?') }}",
    "backtest.failed": "Backtest failed: {{ data.bot_name | default('inline strategy', true) }}"
    " on {{ data.symbol | default('?') }}",
    "bot.started": "{{ data.bot_name | default('Your bot') }} started trading",
    "bot.stopped": "{{ data.bot_name | default('Your bot') }} stopped",
    "bot.paused": "{{ data.bot_name | default('Your bot') }} was paused by its schedule",
    "bot.error": "{{ data.bot_name | default('Your bot') }} stopped on errors",
    "bot.trade": "{{ data.bot_name | default('Your bot') }} traded",
    "account.password_changed": "Your Botyard password was changed",
    "account.email_change_requested": "A change of your Botyard email address was requested",
    "account.email_changed": "Your Botyard email address was changed",
    "account.new_login": "New login to your Botyard account",
    "account.export_ready": "Your Botyard data export is ready",
    "account.deletion_scheduled": "Your Botyard account is scheduled for deletion",
    "webhook.disabled": "A Botyard webhook was disabled",
    "leaderboard.placed": "{{ data.bot_name | default('Your bot') }} placed"
    " #{{ data.best_rank | default('?') }} on the Botyard leaderboards",
    "bot.forked": "{{ data.by | default('Someone') }} forked"
    " {{ data.bot_name | default('your bot') }}",
    "bot.commented": "{{ data.by | default('Someone') }} commented on"
    " {{ data.bot_name | default('your bot') }}",
    "comment.replied": "{{ data.by | default('Someone') }} replied to your comment",
    "user.followed": "{{ data.by | default('Someone') }} followed you on Botyard",
    "mirror.paused": "{{ data.bot_name | default('Your mirror') }} stopped following its source",
    "content.hidden": "A moderator hid your {{ data.object_type | default('content') }}",
}
DIGEST_SUBJECT = "Your Botyard daily digest: {count} notification{plural}"
DIGEST_MAX_ITEMS = 50  # the rest are counted, not listed


def _percent(value: Any) -> str:
    if isinstance(value, Undefined) or not isinstance(value, int | float) or math.isnan(value):
        return "n/a"
    return f"{value * 100:.2f}%"


def _number(value: Any) -> str:
    if isinstance(value, Undefined) or not isinstance(value, int | float) or math.isnan(value):
        return "n/a"
    return f"{value:.2f}"


def _when(value: Any) -> str:
    """An ISO time (or a datetime) as ``2026-12-07 21:05 UTC``; other text unchanged."""
    if isinstance(value, datetime):
        moment = value
    else:
        try:
            moment = datetime.fromisoformat(str(value))
        except ValueError:
            return str(value)
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def _environment(autoescape: bool) -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATE_DIR),
        # Subjects are headers, not HTML: escaping "&" there would show "&amp;".
        autoescape=select_autoescape(["html"] if autoescape else [], default_for_string=False),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
    )
    env.filters.update(percent=_percent, number=_number, when=_when)
    return env


_bodies = _environment(autoescape=True)
_subjects = _environment(autoescape=False)


def _context(frontend_url: str, username: str, event: str, data: dict[str, Any]) -> dict[str, Any]:
    base = frontend_url.rstrip("/")

    def link(path: str, object_id: Any = None) -> str:
        if object_id is None or isinstance(object_id, Undefined):
            return f"{base}/{path}"
        return f"{base}/{path}/{object_id}"

    return {
        "username": username,
        "event": event,
        "description": EVENTS[event].description,
        "data": data,
        "link": link,
        "settings_link": f"{base}/settings/notifications",
    }


def _one_line(text: str) -> str:
    """A header value: no line breaks (they would start a new header), bounded."""
    return " ".join(text.split())[:200]


def render_event(
    event: str, to: str, username: str, data: dict[str, Any], frontend_url: str
) -> Email:
    """The email for one ``event`` notification to ``to``.

    Raises ``KeyError`` for an event without a subject and jinja2's
    ``TemplateNotFound`` for one without templates (the template test catches both).
    """
    context = _context(frontend_url, username, event, data)
    subject = _subjects.from_string(EVENT_SUBJECTS[event]).render(**context)
    return Email(
        to=to,
        subject=_one_line(subject),
        text=_bodies.get_template(f"events/{event}.txt").render(**context),
        html=_bodies.get_template(f"events/{event}.html").render(**context),
    )


def digest_line(event: str, data: dict[str, Any], frontend_url: str) -> str:
    """One digest entry: the event's subject line (plain text; the HTML template escapes it)."""
    context = _context(frontend_url, "", event, data)
    return _one_line(_subjects.from_string(EVENT_SUBJECTS[event]).render(**context))


def render_digest(
    to: str,
    username: str,
    items: Sequence[tuple[datetime, str]],
    frontend_url: str,
) -> Email:
    """The daily digest listing ``items`` (time, line), at most ``DIGEST_MAX_ITEMS`` of them."""
    shown = list(items[:DIGEST_MAX_ITEMS])
    base = frontend_url.rstrip("/")
    context = {
        "username": username,
        "items": shown,
        "more": len(items) - len(shown),
        "notifications_link": f"{base}/notifications",
        "settings_link": f"{base}/settings/notifications",
    }
    count = len(items)
    return Email(
        to=to,
        subject=DIGEST_SUBJECT.format(count=count, plural="" if count == 1 else "s"),
        text=_bodies.get_template("digest.txt").render(**context),
        html=_bodies.get_template("digest.html").render(**context),
    )
