"""Development SMTP sink: accepts every message on loopback and keeps it as a file.

Run by the Procfile's ``mailsink`` entry (``./scripts/up.sh`` starts it). Each
message is saved as ``var/mail/<time>-<n>.eml`` and summarised on stdout (recipient,
subject, and any links in its text), so a developer can follow a password reset
without a real mail server. Production points ``SMTP_URL`` at a real relay and does
not run this.
"""

from __future__ import annotations

import argparse
import email
import re
import signal
import threading
import time
from email.message import Message
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

LINK = re.compile(r"https?://\S+")


def text_of(message: Message) -> str:
    """The message's plain-text part ('' when it has none)."""
    for part in message.walk():
        if part.get_content_type() == "text/plain":
            payload = part.get_payload(decode=True)
            return payload.decode(errors="replace") if isinstance(payload, bytes) else ""
    return ""


class SaveToDisk:
    """aiosmtpd handler: write each message to ``directory`` and print a summary."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.count = 0
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            self.count += 1
            path = self.directory / f"{time.strftime('%Y%m%dT%H%M%S')}-{self.count}.eml"
        path.write_bytes(envelope.content)
        message = email.message_from_bytes(envelope.content)
        links = " ".join(LINK.findall(text_of(message)))
        print(
            f"mail to {', '.join(envelope.rcpt_tos)}: {message['Subject']!r} -> {path}"
            + (f"\n  links: {links}" if links else ""),
            flush=True,
        )
        return "250 Message accepted"


def main() -> None:
    """Serve until SIGTERM or Ctrl-C."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=1025)
    parser.add_argument("--dir", type=Path, default=Path("var/mail"))
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    controller = Controller(SaveToDisk(args.dir), hostname=args.host, port=args.port)
    controller.start()
    print(f"mail sink on smtp://{args.host}:{args.port}, saving to {args.dir}/", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    controller.stop()


if __name__ == "__main__":
    main()
