"""The development webhook receiver, as a real process: it verifies, dedupes and refuses."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import selectors
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from models.people.tables import Webhook
from tests.test_procfile import procfile_command
from workers.webhooks import signed_request

ROOT = Path(__file__).resolve().parents[1]
SECRET = "whsec_receiver-test-secret-0123456789abcdef"
DEADLINE_S = 60.0


class Running:
    """The receiver process, its URL and a reader for its output lines."""

    def __init__(self, process: subprocess.Popen[str], url: str) -> None:
        self.process, self.url = process, url

    def line(self) -> str:
        """The next line it prints (waits for it, up to the deadline)."""
        assert self.process.stdout is not None
        selector = selectors.DefaultSelector()
        selector.register(self.process.stdout, selectors.EVENT_READ)
        assert selector.select(DEADLINE_S), "the receiver printed nothing"
        return self.process.stdout.readline().strip()


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[Running]:
    secret_file = tmp_path / "webhook_secret"
    secret_file.write_text(SECRET + "\n")
    process = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "scripts/webhook_receiver.py"),
            "--port",
            "0",
            "--secret-file",
            str(secret_file),
            "--dir",
            str(tmp_path / "out"),
        ],
        env={**os.environ, "WEBHOOK_SINK_SECRET": ""},
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    running = Running(process, "")
    try:
        first = running.line()
        assert first.startswith("webhook receiver on http://127.0.0.1:"), first
        running.url = first.rsplit(" ", 1)[-1]
        yield running
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


def post(
    url: str,
    body: bytes,
    stamp: int,
    secret: str = SECRET,
    delivery: str = "d-1",
    signed: bytes | None = None,
) -> int:
    """POST ``body`` signed as the docs say (over ``signed`` instead, to forge a tamper)."""
    signed_body = body if signed is None else signed
    mac = hmac.new(secret.encode(), f"{stamp}.".encode() + signed_body, hashlib.sha256)
    request = urllib.request.Request(  # noqa: S310 (an http URL of our own process)
        url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "X-Botyard-Event": "ping",
            "X-Botyard-Delivery": delivery,
            "X-Botyard-Timestamp": str(stamp),
            "X-Botyard-Signature": f"v1={mac.hexdigest()}",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=DEADLINE_S) as response:  # noqa: S310
            return int(response.status)
    except urllib.error.HTTPError as refused:
        return refused.code


def test_the_receiver_prints_verified_deliveries_and_refuses_the_rest(
    receiver: Running, tmp_path: Path
) -> None:
    body = json.dumps({"id": "d-1", "event": "ping", "data": {}}).encode()
    now = int(time.time())
    assert post(receiver.url, body, now) == 200
    assert receiver.line().startswith("webhook ping d-1 verified -> ")
    [saved] = (tmp_path / "out").iterdir()
    assert json.loads(saved.read_text())["id"] == "d-1"

    assert post(receiver.url, body, now) == 200  # a retry of a delivered one
    assert "already handled" in receiver.line()
    assert post(receiver.url, body, now, secret="whsec_other", delivery="d-2") == 401
    assert "signature does not match" in receiver.line()
    tampered = body.replace(b"ping", b"pong")
    assert post(receiver.url, tampered, now, delivery="d-3", signed=body) == 401
    assert "signature does not match" in receiver.line()
    assert post(receiver.url, body, now - 301, delivery="d-4") == 401
    assert "replay window" in receiver.line()
    assert len(list((tmp_path / "out").iterdir())) == 1


def test_the_receiver_verifies_what_the_delivery_job_sends(receiver: Running) -> None:
    hook = Webhook(secret=SECRET)
    body, headers = signed_request(hook, "d-9", "ping", datetime.now(UTC), {"hello": "world"})
    request = urllib.request.Request(  # noqa: S310 (an http URL of our own process)
        receiver.url, data=body, method="POST", headers=headers
    )
    with urllib.request.urlopen(request, timeout=DEADLINE_S) as response:  # noqa: S310
        assert response.status == 200
    assert receiver.line().startswith("webhook ping d-9 verified")


def test_the_procfile_runs_the_receiver_on_loopback_with_the_seeded_secret() -> None:
    command = procfile_command("webhooks")
    assert command.startswith(
        "python scripts/webhook_receiver.py --port ${WEBHOOK_SINK_PORT:-9099}"
    )
    assert "--secret-file var/webhook_secret" in command
    assert "--host" not in command  # the default: 127.0.0.1 only
