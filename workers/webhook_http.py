"""The HTTP side of webhook deliveries: one POST to an address the SSRF guard vetted.

The connection goes to an IP address :func:`models.people.webhook_urls.vet` returned,
never to the host name again (a second DNS answer could point somewhere private);
the Host header, TLS SNI and certificate checks still use the URL's host name.
Redirects are never followed: http.client does not follow them, and a 3xx counts
as a failed attempt. Only a bounded part of the response is read, and none is kept.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import time
from dataclasses import dataclass

from models.people.webhook_urls import Target

RESPONSE_READ_LIMIT = 4096


@dataclass(frozen=True)
class Outcome:
    """What one attempt got: a status code, or an error, and how long it took."""

    status_code: int | None
    error: str | None  # None: a 2xx answer
    duration_ms: int


def _connect(addresses: tuple[str, ...], port: int, timeout: float) -> socket.socket:
    """A TCP connection to the first vetted address that answers."""
    last: OSError | None = None
    for address in addresses:
        try:
            return socket.create_connection((address, port), timeout=timeout)
        except OSError as exc:
            last = exc
    raise last or OSError("no address to connect to")


class _PinnedHTTP(http.client.HTTPConnection):
    """Plain HTTP to a vetted address; ``host`` is only what the Host header says."""

    def __init__(self, target: Target, timeout: float) -> None:
        super().__init__(target.host, target.port, timeout=timeout)
        self._addresses = target.addresses

    def connect(self) -> None:
        self.sock = _connect(self._addresses, self.port, float(self.timeout or 10))


class _PinnedHTTPS(http.client.HTTPSConnection):
    """TLS to a vetted address, verifying the certificate against the URL's host name."""

    def __init__(self, target: Target, timeout: float) -> None:
        self._tls = ssl.create_default_context()
        super().__init__(target.host, target.port, timeout=timeout, context=self._tls)
        self._addresses = target.addresses

    def connect(self) -> None:
        raw = _connect(self._addresses, self.port, float(self.timeout or 10))
        try:
            self.sock = self._tls.wrap_socket(raw, server_hostname=self.host)
        except BaseException:
            raw.close()
            raise


def post(target: Target, body: bytes, headers: dict[str, str], timeout: float) -> Outcome:
    """POST ``body`` to ``target``; never raises for network or HTTP failures."""
    started = time.monotonic()
    connection: http.client.HTTPConnection = (
        _PinnedHTTPS(target, timeout) if target.scheme == "https" else _PinnedHTTP(target, timeout)
    )
    try:
        connection.request("POST", target.path, body=body, headers=headers)
        response = connection.getresponse()
        response.read(RESPONSE_READ_LIMIT)
        status = response.status
    except (OSError, http.client.HTTPException) as exc:
        return Outcome(None, _describe(exc), _elapsed_ms(started))
    finally:
        connection.close()
    if 200 <= status < 300:
        return Outcome(status, None, _elapsed_ms(started))
    if 300 <= status < 400:
        return Outcome(status, f"HTTP {status}: redirects are not followed", _elapsed_ms(started))
    return Outcome(status, f"HTTP {status}", _elapsed_ms(started))


def _describe(exc: BaseException) -> str:
    """A short error for the attempt log (no response body, no secrets)."""
    if isinstance(exc, TimeoutError | socket.timeout):
        return "Timed out"
    if isinstance(exc, ssl.SSLError):
        return f"TLS error: {exc.reason or type(exc).__name__}"
    if isinstance(exc, ConnectionRefusedError):
        return "Connection refused"
    return f"{type(exc).__name__}: {exc}"[:300]


def _elapsed_ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
