"""A real loopback SMTP server (aiosmtpd) that keeps what it receives, for mail tests."""

from __future__ import annotations

import email
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import Message
from typing import Any

from aiosmtpd.controller import Controller


class Inbox:
    """An aiosmtpd handler that keeps every message it receives."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"


def free_port() -> int:
    """A loopback port nothing listens on (aiosmtpd's Controller cannot start on port 0)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def smtp_server() -> Iterator[tuple[Inbox, str]]:
    """Run an SMTP server on loopback; yields its inbox and its ``smtp://`` URL."""
    handler = Inbox()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield handler, f"smtp://127.0.0.1:{port}"
    finally:
        controller.stop()


def body(message: Message, kind: str = "plain") -> str:
    """The decoded ``text/<kind>`` part of ``message``."""
    for part in message.walk():
        if part.get_content_type() == f"text/{kind}":
            return str(part.get_payload(decode=True).decode())
    raise AssertionError(f"no text/{kind} part")
