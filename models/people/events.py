"""The notification events: their names, and the channels each one uses by default.

One place names every event ``notify()`` accepts; the settings document, the email
templates and the webhook subscriptions are all checked against it. Later areas
(community, leaderboards, alerts) add their events here.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EventSpec:
    """What an event is and how it reaches the user unless their settings say otherwise.

    ``security`` events always email (the settings cannot turn that off): they are how
    someone learns that their account is being taken over.
    """

    description: str
    in_app: bool = True
    email: bool = False
    webhook: bool = True
    digest: bool = False
    security: bool = False


EVENTS: dict[str, EventSpec] = {
    "backtest.finished": EventSpec("A backtest finished", email=True),
    "backtest.failed": EventSpec("A backtest failed", email=True),
    "bot.started": EventSpec("A bot started trading"),
    "bot.stopped": EventSpec("A bot stopped"),
    "bot.paused": EventSpec("A bot was paused by its schedule"),
    "bot.error": EventSpec("A bot stopped on repeated errors", email=True),
    "bot.trade": EventSpec("A bot traded", in_app=False, webhook=False),
    "account.password_changed": EventSpec("Your password was changed", security=True),
    "account.email_change_requested": EventSpec(
        "A change of your email address was requested", security=True
    ),
    "account.email_changed": EventSpec("Your email address was changed", security=True),
    "account.new_login": EventSpec("A login from a new device or address", security=True),
    "account.export_ready": EventSpec("Your data export is ready", email=True),
    "account.deletion_scheduled": EventSpec(
        "Your account is scheduled for deletion", security=True
    ),
    "webhook.disabled": EventSpec("A webhook was disabled after failing", email=True),
    "leaderboard.placed": EventSpec("A bot of yours placed in a leaderboard's top", email=True),
    "bot.forked": EventSpec("Someone forked a bot of yours"),
    "bot.commented": EventSpec("Someone commented on a bot of yours"),
    "comment.replied": EventSpec("Someone replied to your comment"),
    "user.followed": EventSpec("Someone followed you"),
    "mirror.paused": EventSpec("A mirror of yours stopped following its source", email=True),
    "content.hidden": EventSpec("A moderator hid a bot or comment of yours", email=True),
}

CHANNELS = ("in_app", "email", "webhook", "digest")


def known_event(name: str) -> bool:
    """Whether ``name`` is an event ``notify()`` accepts."""
    return name in EVENTS
