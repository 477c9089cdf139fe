"""The `streams` process: an asyncio HTTP/1.1 server that runs the Flask app for each request.

Every request goes through the same app as on ``web`` (settings, CORS, auth, rate
limits, validation, the error shape), run by a small thread pool: psycopg, redis-py
and flask-limiter stay in plain blocking mode and nothing is monkey-patched. A stream
view answers with a hand-off (``api.market.stream.HandOff``) instead of a body that
would hold the thread: the server writes its head and replay, and the listener joins
the fan-out (``api.streams.fanout``), which does every later write on the event loop.
Any other response is sent whole, and the connection closed.

h11 parses requests (no parser of our own); one request per connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import sys
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from http import HTTPStatus
from typing import Any
from urllib.parse import unquote_to_bytes

import h11
import orjson
import structlog
from flask import Flask

from api.market.stream import HandOff
from api.streams.fanout import Fanout, Listener

log = structlog.get_logger("botyard.streams")

REQUEST_TIMEOUT_S = 10.0  # a request's head and body must arrive within this
MAX_HEAD_BYTES = 16 * 1024
MAX_BUFFER_BYTES = 512 * 1024  # unsent bytes after which a stream's client is dropped
SHUTDOWN_FLUSH_S = 5.0
LISTENER_KEY = "botyard.stream_listener"


class Connection(asyncio.Protocol):
    """One client connection: a request, then either a whole response or a stream."""

    def __init__(self, server: StreamsServer) -> None:
        self.server = server
        self.h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD_BYTES)
        self.transport: asyncio.Transport | None = None
        self.request: h11.Request | None = None
        self.body = bytearray()
        self.dispatched = False
        self.chunked = False
        self.timer: asyncio.TimerHandle | None = None
        self.listener: Listener | None = None

    # --- asyncio.Protocol -----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Wait for a request, for at most REQUEST_TIMEOUT_S."""
        transport.set_write_buffer_limits(high=MAX_BUFFER_BYTES)  # type: ignore[attr-defined]
        self.transport = transport  # type: ignore[assignment]
        self.timer = asyncio.get_running_loop().call_later(REQUEST_TIMEOUT_S, self.close)

    def data_received(self, data: bytes) -> None:
        """Feed h11 until one request is complete; a stream's client has nothing more to say."""
        if self.dispatched:
            return
        self.h11.receive_data(data)
        try:
            self._read_events()
        except h11.RemoteProtocolError as exc:
            self._send_error(exc.error_status_hint, "The request is not valid HTTP/1.1.")

    def connection_lost(self, exc: Exception | None) -> None:
        """The client left: drop its stream, if it had one."""
        if self.timer is not None:
            self.timer.cancel()
        self.transport = None
        if self.listener is not None:
            self.server.fanout.drop(self.listener)

    # --- Sink, for the fan-out ------------------------------------------------------------

    def send(self, data: bytes) -> None:
        """Write without blocking (the transport buffers what the socket does not take)."""
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.write(data)

    def pause_writing(self) -> None:
        """More than MAX_BUFFER_BYTES unsent: a client this far behind is dropped (its
        EventSource reconnects and resumes from its last id)."""
        if self.listener is not None:
            log.info("streams_client_too_slow")
            self.close()

    def close(self) -> None:
        """Close the connection (its connection_lost follows)."""
        if self.transport is not None:
            self.transport.close()

    # --- requests -------------------------------------------------------------------------

    def _read_events(self) -> None:
        while not self.dispatched:
            event = self.h11.next_event()
            if event is h11.NEED_DATA or isinstance(event, h11.ConnectionClosed):
                return
            if isinstance(event, h11.Request):
                self.request = event
            elif isinstance(event, h11.Data):
                self.body += event.data
                if len(self.body) > self.server.max_body_bytes:
                    self._send_error(413, "The request body is too large.")
                    return
            elif isinstance(event, h11.EndOfMessage):
                self.dispatched = True
                if self.timer is not None:
                    self.timer.cancel()
                asyncio.get_running_loop().create_task(self._dispatch())

    async def _dispatch(self) -> None:
        assert self.request is not None  # noqa: S101 - set before EndOfMessage
        environ = self._environ(self.request)
        loop = asyncio.get_running_loop()
        try:
            status, headers, body = await loop.run_in_executor(
                self.server.pool, call_app, self.server.app, environ
            )
        except Exception:
            log.exception("streams_request_failed")
            if environ.get(LISTENER_KEY) is not None:
                self.server.fanout.drop(environ[LISTENER_KEY])
            self._send_error(500, "Something went wrong on our side.")
            return
        listener = environ.get(LISTENER_KEY)
        if isinstance(body, HandOff) and self.transport is not None:
            self._start_stream(status, headers, body)
            return
        if listener is not None:  # a stream opened but not served (HEAD, or the client left)
            self.server.fanout.drop(listener)
        if isinstance(body, HandOff):
            return
        self._respond(status, headers, body)

    def _start_stream(self, status: int, headers: list[tuple[str, str]], body: HandOff) -> None:
        self.listener = body.listener
        head = self.h11.send(h11.Response(status_code=status, headers=headers)) or b""
        self.chunked = b"transfer-encoding: chunked" in head.lower()
        prelude = body.prelude
        self.send(head + (b"%x\r\n%s\r\n" % (len(prelude), prelude) if self.chunked else prelude))
        self.server.fanout.attach(body.listener, self)
        # A stream's connection has nothing more to parse: let the parser and request go.
        self.request, self.body = None, bytearray()

    def _respond(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        if self.transport is None:
            return
        headers = [(k, v) for k, v in headers if k.lower() != "connection"]
        headers.append(("Connection", "close"))
        try:
            out = self.h11.send(h11.Response(status_code=status, headers=headers)) or b""
            if body:
                out += self.h11.send(h11.Data(data=body)) or b""
            out += self.h11.send(h11.EndOfMessage()) or b""
        except h11.LocalProtocolError:
            log.exception("streams_response_invalid", status=status)
            self.close()
            return
        self.transport.write(out)
        self.close()

    def _send_error(self, status: int, message: str) -> None:
        """An error in the one shape, for what never reached the app (bad HTTP, a huge body)."""
        self.dispatched = True
        payload = {
            "code": status,
            "status": HTTPStatus(status).phrase,
            "message": message,
            "request_id": uuid.uuid4().hex,
        }
        body = orjson.dumps(payload)
        if self.h11.our_state in (h11.IDLE, h11.SEND_RESPONSE):
            headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
            self._respond(status, headers, body)
        else:
            self.close()

    def _environ(self, request: h11.Request) -> dict[str, Any]:
        target = request.target
        if not target.startswith(b"/"):  # absolute form: keep the path and query only
            target = b"/" + target.split(b"://", 1)[-1].partition(b"/")[2]
        path, _, query = target.partition(b"?")
        assert self.transport is not None  # noqa: S101 - called from data_received
        peer = self.transport.get_extra_info("peername") or ("", 0)
        environ: dict[str, Any] = {
            "REQUEST_METHOD": request.method.decode("ascii"),
            "SCRIPT_NAME": "",
            "PATH_INFO": unquote_to_bytes(path).decode("latin-1"),
            "QUERY_STRING": query.decode("latin-1"),
            "SERVER_NAME": self.server.host,
            "SERVER_PORT": str(self.server.port),
            "SERVER_PROTOCOL": "HTTP/" + request.http_version.decode("ascii"),
            "REMOTE_ADDR": str(peer[0]),
            "REMOTE_PORT": str(peer[1]),
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(bytes(self.body)),
            "wsgi.input_terminated": True,
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
        }
        for raw_name, raw_value in request.headers:
            name = raw_name.decode("latin-1").upper()
            if "_" in name:  # as gunicorn does: X_Forwarded_For must not pose as X-Forwarded-For
                continue
            value = raw_value.decode("latin-1")
            key = name.replace("-", "_")
            if key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
                environ[key] = value
                continue
            key = "HTTP_" + key
            environ[key] = f"{environ[key]},{value}" if key in environ else value
        return environ


def call_app(app: Flask, environ: dict[str, Any]) -> tuple[int, list[tuple[str, str]], Any]:
    """Run the WSGI app (in a pool thread): status, headers, and a body or a hand-off."""
    started: dict[str, Any] = {}

    def start_response(
        status: str, headers: list[tuple[str, str]], exc_info: Any = None
    ) -> Callable[[bytes], None]:
        started["status"], started["headers"] = int(status.split(" ", 1)[0]), headers
        return _no_write

    result: Iterable[bytes] = app(environ, start_response)
    if isinstance(result, HandOff):
        return started["status"], started["headers"], result
    try:
        body = b"".join(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    return started["status"], started["headers"], body


def _no_write(data: bytes) -> None:
    raise RuntimeError("the streams server does not support WSGI's write()")


class StreamsServer:
    """The listening socket, the app's thread pool and the fan-out."""

    def __init__(self, app: Flask, host: str, port: int, threads: int) -> None:
        settings = app.extensions["botyard.settings"]
        self.app, self.host, self.port = app, host, port
        self.max_body_bytes = settings.max_body_bytes
        self.fanout = Fanout(settings.redis_url, settings.sse_heartbeat_s)
        app.extensions["botyard.fanout"] = self.fanout
        self.pool = ThreadPoolExecutor(threads, thread_name_prefix="streams-app")

    async def serve(self, stop: asyncio.Event) -> None:
        """Listen until ``stop`` is set, then end every stream and return."""
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: Connection(self),
            self.host,
            self.port,
            backlog=4096,
            reuse_port=True,  # more streams processes may share the port on one host
        )
        self.port = server.sockets[0].getsockname()[1]
        reader = asyncio.create_task(self.fanout.run())
        log.info("streams_listening", host=self.host, port=self.port)
        try:
            await stop.wait()
        finally:
            server.close()
            self.fanout.close_all()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.fanout.flush(), SHUTDOWN_FLUSH_S)
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
            self.pool.shutdown(wait=False, cancel_futures=True)
            log.info("streams_stopped")
