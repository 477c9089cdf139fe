"""Development webhook receiver: verifies Botyard's signed deliveries and prints them.

Run by the Procfile's ``webhooks`` entry (``./scripts/up.sh`` starts it) on loopback.
It checks each POST the way docs/webhooks.md tells a receiver to: the HMAC-SHA256 of
``"{X-Botyard-Timestamp}." + raw body`` under the webhook's secret, compared in
constant time; a timestamp more than five minutes away is refused (replays), and a
delivery id seen before is acknowledged without being shown twice. Verified deliveries
are printed one line each and saved as ``var/webhooks/<time>-<delivery>.json``; a bad
signature gets a 401.

The secret comes from ``WEBHOOK_SINK_SECRET`` or, re-read on every request so that a
re-seed takes effect, from ``--secret-file`` (the seed writes ``var/webhook_secret``).
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import signal
import threading
import time
from collections import OrderedDict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

TOLERANCE_S = 300
MAX_BODY = 1024 * 1024
REMEMBERED_IDS = 10_000


def expected_signature(secret: str, timestamp: str, body: bytes) -> str:
    """``v1=`` and the hex HMAC-SHA256 of ``timestamp + "." + body`` under ``secret``."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "v1=" + digest.hexdigest()


def check(
    secret: str, timestamp: str, signatures: str, body: bytes, *, now: float, tolerance: int
) -> str | None:
    """Why the delivery must be refused, or None when it verifies."""
    if not timestamp.isdigit():
        return "missing or malformed X-Botyard-Timestamp"
    if abs(now - int(timestamp)) > tolerance:
        return "timestamp outside the replay window"
    wanted = expected_signature(secret, timestamp, body)
    # Several comma-separated signatures may come (a future key rotation); any one will do.
    offered = [part.strip() for part in signatures.split(",") if part.strip()]
    if not any(hmac.compare_digest(wanted.encode(), sig.encode()) for sig in offered):
        return "signature does not match"
    return None


class Receiver:
    """The receiver's state: where the secret is, what it has seen, where to save."""

    def __init__(self, secret: str | None, secret_file: Path, directory: Path | None) -> None:
        self.secret = secret
        self.secret_file = secret_file
        self.directory = directory
        self.seen: OrderedDict[str, None] = OrderedDict()
        self.lock = threading.Lock()

    def current_secret(self) -> str | None:
        """The configured secret, or the secret file's contents (None if neither is there)."""
        if self.secret:
            return self.secret
        try:
            return self.secret_file.read_text().strip() or None
        except OSError:
            return None

    def first_time(self, delivery_id: str) -> bool:
        """Remember ``delivery_id``; False if it was seen before (a retry of a delivered one)."""
        with self.lock:
            if delivery_id in self.seen:
                return False
            self.seen[delivery_id] = None
            if len(self.seen) > REMEMBERED_IDS:
                self.seen.popitem(last=False)
            return True

    def save(self, delivery_id: str, payload: Any) -> Path | None:
        """Write a verified delivery to the output directory (if any)."""
        if self.directory is None:
            return None
        safe = "".join(ch for ch in delivery_id if ch.isalnum() or ch == "-")[:64] or "unknown"
        path = self.directory / f"{time.strftime('%Y%m%dT%H%M%S')}-{safe}.json"
        path.write_text(json.dumps(payload, indent=2, sort_keys=True))
        return path


def make_handler(receiver: Receiver, tolerance: int) -> type[BaseHTTPRequestHandler]:
    """The request handler class bound to ``receiver``."""

    class Handler(BaseHTTPRequestHandler):
        server_version = "botyard-webhook-receiver"

        def log_message(self, format: str, *args: Any) -> None:
            pass  # one line per delivery is printed below; no access log

        def answer(self, status: int, text: str) -> None:
            data = (text + "\n").encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                self.answer(413, "too large")
                return
            body = self.rfile.read(length)
            secret = receiver.current_secret()
            if secret is None:
                print("webhook refused: no secret configured", flush=True)
                self.answer(503, "no secret configured")
                return
            reason = check(
                secret,
                self.headers.get("X-Botyard-Timestamp", ""),
                self.headers.get("X-Botyard-Signature", ""),
                body,
                now=time.time(),
                tolerance=tolerance,
            )
            if reason is not None:
                print(f"webhook refused ({reason}) from {self.client_address[0]}", flush=True)
                self.answer(401, reason)
                return
            delivery_id = self.headers.get("X-Botyard-Delivery", "")
            if not receiver.first_time(delivery_id):
                print(f"webhook {delivery_id} again (already handled; acknowledged)", flush=True)
                self.answer(200, "duplicate")
                return
            payload = json.loads(body)
            path = receiver.save(delivery_id, payload)
            print(
                f"webhook {payload.get('event')} {delivery_id} verified"
                + (f" -> {path}" if path else ""),
                flush=True,
            )
            self.answer(200, "ok")

    return Handler


def main(argv: list[str] | None = None) -> None:
    """Serve until SIGTERM or Ctrl-C."""
    parser = argparse.ArgumentParser(description="Verify and print Botyard webhook deliveries")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9099)
    parser.add_argument("--secret-file", default="var/webhook_secret")
    parser.add_argument("--dir", default="", help="save verified deliveries here (optional)")
    parser.add_argument("--tolerance", type=int, default=TOLERANCE_S, help="replay window, s")
    args = parser.parse_args(argv)
    directory = Path(args.dir) if args.dir else None
    if directory is not None:
        directory.mkdir(parents=True, exist_ok=True)
    receiver = Receiver(
        os.environ.get("WEBHOOK_SINK_SECRET") or None, Path(args.secret_file), directory
    )
    server = ThreadingHTTPServer((args.host, args.port), make_handler(receiver, args.tolerance))
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    print(f"webhook receiver on http://{args.host}:{server.server_port}/", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
