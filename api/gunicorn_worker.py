"""gunicorn's threaded worker, answering the errors it raises before the app in the one shape.

A request gunicorn itself refuses (a request line over ``limit_request_line``: 414; too
many or too large headers: 431; a malformed request line or header: 400; an unsupported
transfer coding: 501) never reaches Flask, and gunicorn answers it with an HTML page. This
worker lets gunicorn decide the status and log as usual, then sends the JSON error shape
of docs/api.md instead of the page. Selected in scripts/gunicorn_conf.py.
"""

from __future__ import annotations

import json
import socket
import uuid
from http import HTTPStatus
from typing import Any

from gunicorn import util
from gunicorn.workers.gthread import ThreadWorker

MESSAGES = {
    400: "The request could not be read: its request line or a header is malformed.",
    403: "Request forbidden.",
    414: "The URL is too long; send long inputs in a JSON body.",
    417: "The Expect header cannot be met.",
    431: "The request headers are too many or too large.",
    500: "Internal server error; it has been logged.",
    501: "That transfer coding is not supported.",
}


class _StatusCapture:
    """Stands in for the client socket while gunicorn writes its HTML error: keeps the status."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self.status: int | None = None

    def gettimeout(self) -> float | None:
        return 0.0  # gunicorn's write_nonblock then calls sendall directly

    def sendall(self, data: bytes) -> None:
        status_line = data.split(b"\r\n", 1)[0].split()
        if self.status is None and len(status_line) >= 2 and status_line[1].isdigit():
            self.status = int(status_line[1])

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


def error_bytes(status: int) -> bytes:
    """A complete HTTP response carrying the JSON error shape for ``status``."""
    request_id = uuid.uuid4().hex
    phrase = HTTPStatus(status).phrase
    body = json.dumps(
        {
            "code": status,
            "status": phrase,
            "message": MESSAGES.get(status, phrase),
            "request_id": request_id,
        }
    ).encode()
    head = (
        f"HTTP/1.1 {status} {phrase}\r\n"
        "Connection: close\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
        f"X-Request-ID: {request_id}\r\n\r\n"
    )
    return head.encode("latin-1") + body


class JsonErrorThreadWorker(ThreadWorker):  # type: ignore[misc]
    """The ``gthread`` worker whose own error responses are JSON in the one error shape."""

    def handle_error(self, req: Any, client: socket.socket, addr: Any, exc: BaseException) -> None:
        """Let gunicorn pick the status and log; send our JSON instead of its HTML page."""
        capture = _StatusCapture(client)
        super().handle_error(req, capture, addr, exc)
        try:
            util.write_nonblock(client, error_bytes(capture.status or 500))
        except Exception:  # the client may be gone; gunicorn ignores this too
            self.log.debug("Failed to send error message.")
