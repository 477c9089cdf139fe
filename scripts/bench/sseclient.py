"""A minimal Server-Sent Events client on raw asyncio streams (one coroutine per client).

It speaks just enough HTTP/1.1 for the benchmark: one GET, the status line and
headers, then a chunked (or close-delimited) body parsed into ``id:``/``event:``/
``data:`` events. Data is kept as received and decoded after the run, so the
client does as little as possible while events arrive. Also here: opening many
clients at once, and watching this process's event loop for lag.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from harness import note

RETRY_STATUSES = (429, 503)  # the server's per-process or per-caller stream limit


@dataclass
class Event:
    """One dispatched SSE event."""

    id: str
    event: str
    data: str


class SSEParser:
    """Incremental parser: feed bytes, get the events they complete."""

    def __init__(self) -> None:
        self._buffer = b""
        self._id = ""
        self._event = ""
        self._data: list[str] = []
        self.comments = 0
        self.retry_ms: int | None = None

    def feed(self, chunk: bytes) -> list[Event]:
        """Events completed by ``chunk`` (a blank line dispatches one)."""
        self._buffer += chunk
        *lines, self._buffer = self._buffer.split(b"\n")
        events: list[Event] = []
        for raw in lines:
            line = raw.rstrip(b"\r").decode()
            if not line:
                if self._data:
                    events.append(Event(self._id, self._event or "message", "\n".join(self._data)))
                self._event, self._data = "", []
                continue
            if line.startswith(":"):
                self.comments += 1
                continue
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "data":
                self._data.append(value)
            elif name == "event":
                self._event = value
            elif name == "id":
                self._id = value
            elif name == "retry" and value.isdigit():
                self.retry_ms = int(value)
        return events


@dataclass
class SSEClient:
    """One stream: connects (retrying the server's limit statuses), then records events."""

    index: int
    attempts: int = 0
    status: str = "new"  # new, open, refused, failed, closed
    error: str = ""
    events: list[tuple[float, str, str]] = field(default_factory=list)  # (received, event, data)
    statuses: dict[int, int] = field(default_factory=dict)  # refusals by HTTP status
    parser: SSEParser = field(default_factory=SSEParser)
    writer: asyncio.StreamWriter | None = None

    async def run(
        self, port: int, path: str, opened: asyncio.Queue[SSEClient], max_attempts: int = 40
    ) -> None:
        """Connect, report to ``opened`` once the first chunk arrives, then read until closed."""
        try:
            connected = await self._connect(port, path, max_attempts)
        except (OSError, ValueError, asyncio.IncompleteReadError) as exc:
            self.status, self.error = "failed", f"{type(exc).__name__}: {exc}"
            self.close()
            opened.put_nowait(self)
            return
        if connected is None:
            opened.put_nowait(self)
            return
        try:
            first = True
            async for chunk in self._chunks(*connected):
                received = time.time()
                for event in self.parser.feed(chunk):
                    self.events.append((received, event.event, event.data))
                if first:
                    self.status, first = "open", False
                    opened.put_nowait(self)
        except (OSError, ValueError, asyncio.IncompleteReadError) as exc:
            self.error = f"{type(exc).__name__}: {exc}"
        finally:
            if self.status == "new":
                self.status = "failed"
                opened.put_nowait(self)
            elif self.status == "open":
                self.status = "closed"
            self.close()

    async def _connect(
        self, port: int, path: str, max_attempts: int
    ) -> tuple[asyncio.StreamReader, bool] | None:
        request = (
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            "Accept: text/event-stream\r\nCache-Control: no-cache\r\n\r\n"
        ).encode()
        while True:
            self.attempts += 1
            reader, self.writer = await asyncio.open_connection("127.0.0.1", port)
            self.writer.write(request)
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
            status_line, *header_lines = head.split("\r\n")
            status = int(status_line.split()[1])
            headers = {
                k.strip().lower(): v.strip()
                for k, _, v in (h.partition(":") for h in header_lines if h)
            }
            if status == 200:
                return reader, headers.get("transfer-encoding", "").lower() == "chunked"
            self.statuses[status] = self.statuses.get(status, 0) + 1
            self.close()
            if status not in RETRY_STATUSES or self.attempts >= max_attempts:
                self.status, self.error = "refused", f"HTTP {status} after {self.attempts} tries"
                return None
            await asyncio.sleep(0.05 * min(self.attempts, 10))

    @staticmethod
    async def _chunks(reader: asyncio.StreamReader, chunked: bool) -> AsyncIterator[bytes]:
        while True:
            if not chunked:
                data = await reader.read(65536)
                if not data:
                    return
                yield data
                continue
            size = int((await reader.readline()).strip() or b"0", 16)
            if size == 0:
                return
            data = await reader.readexactly(size + 2)
            yield data[:-2]

    def close(self) -> None:
        """Close the connection (idempotent)."""
        if self.writer is not None:
            with contextlib.suppress(Exception):
                self.writer.close()
            self.writer = None


async def open_clients(
    port: int, path: str, count: int, concurrency: int, timeout: float, *, lean: bool = False
) -> tuple[list[SSEClient], list[asyncio.Task[None]]]:
    """Start ``count`` clients, at most ``concurrency`` connecting at once; wait for all."""
    opened: asyncio.Queue[SSEClient] = asyncio.Queue()
    kind = LeanClient if lean else SSEClient
    clients = [kind(i) for i in range(count)]
    tasks: list[asyncio.Task[None]] = []
    deadline = asyncio.get_running_loop().time() + timeout
    settled = 0

    async def settle_one() -> None:
        nonlocal settled
        remaining = deadline - asyncio.get_running_loop().time()
        await asyncio.wait_for(opened.get(), max(0.01, remaining))
        settled += 1

    try:
        for client in clients:
            while len(tasks) - settled >= concurrency:
                await settle_one()
            tasks.append(asyncio.create_task(client.run(port, path, opened)))
        while settled < count:
            await settle_one()
    except TimeoutError:
        note(f"{count - settled} client(s) still connecting after {timeout:.0f}s")
    return clients, tasks


async def loop_lag(samples: list[float], stop: asyncio.Event, period: float = 0.005) -> None:
    """How late this process's event loop wakes up (bounds the client-side share of latency)."""
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        before = loop.time()
        await asyncio.sleep(period)
        samples.append((loop.time() - before - period) * 1000)


class _StreamProtocol(asyncio.BufferedProtocol):
    """One connection of a :class:`LeanClient`: the head is parsed as it comes, the body kept.

    A buffered protocol reads into a small buffer of its own: a plain one gets a fresh
    256 KB bytes object from every ``recv``.
    """

    def __init__(self, client: LeanClient, request: bytes) -> None:
        self.client, self.request = client, request
        self.buffer = memoryview(bytearray(16384))
        self.head = b""
        self.status: asyncio.Future[tuple[int, bool]] = asyncio.get_running_loop().create_future()
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.transport.write(self.request)

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.buffer

    def buffer_updated(self, nbytes: int) -> None:
        self.data_received(bytes(self.buffer[:nbytes]))

    def data_received(self, data: bytes) -> None:
        if self.status.done():
            self.client.raw.append((time.time(), data))  # parsed after the run
            return
        self.head += data
        end = self.head.find(b"\r\n\r\n")
        if end < 0:
            return
        head, rest = self.head[:end].decode("latin-1"), self.head[end + 4 :]
        status = int(head.split(" ", 2)[1])
        chunked = "transfer-encoding: chunked" in head.lower()
        self.status.set_result((status, chunked))
        if rest:
            self.client.raw.append((time.time(), rest))

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.status.done():
            self.status.set_exception(exc or ConnectionResetError("closed before the head"))
        if not self.closed.done():
            self.closed.set_result(None)


@dataclass
class LeanClient(SSEClient):
    """An SSE client that does almost nothing while events arrive.

    A protocol callback stores each received piece of the body with its arrival time;
    de-chunking and parsing happen in :meth:`finish`, after the run. At 10,000 streams
    a client that parses in the loop (as :class:`SSEClient` does) would measure itself.
    """

    raw: list[tuple[float, bytes]] = field(default_factory=list)
    chunked: bool = False
    protocol: _StreamProtocol | None = None

    async def run(
        self, port: int, path: str, opened: asyncio.Queue[SSEClient], max_attempts: int = 40
    ) -> None:
        """Connect (retrying 429/503), report to ``opened``, then wait until closed."""
        loop = asyncio.get_running_loop()
        request = (
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            "Accept: text/event-stream\r\nCache-Control: no-cache\r\n\r\n"
        ).encode()
        try:
            while True:
                self.attempts += 1
                self.raw.clear()
                _, protocol = await loop.create_connection(
                    lambda: _StreamProtocol(self, request), "127.0.0.1", port
                )
                self.protocol = protocol
                status, self.chunked = await protocol.status
                if status == 200:
                    break
                self.statuses[status] = self.statuses.get(status, 0) + 1
                self.close()
                if status not in RETRY_STATUSES or self.attempts >= max_attempts:
                    self.status = "refused"
                    self.error = f"HTTP {status} after {self.attempts} tries"
                    opened.put_nowait(self)
                    return
                await asyncio.sleep(0.05 * min(self.attempts, 10))
        except (OSError, ValueError, IndexError) as exc:
            self.status, self.error = "failed", f"{type(exc).__name__}: {exc}"
            self.close()
            opened.put_nowait(self)
            return
        self.status = "open"
        opened.put_nowait(self)
        await protocol.closed
        if self.status == "open":
            self.status = "closed"

    def finish(self) -> None:
        """Parse what was received into ``events`` (each stamped when its last byte came)."""
        parser, pending = SSEParser(), b""
        for received, data in self.raw:
            if not self.chunked:
                body = data
            else:
                pending += data
                parts = []
                while True:
                    line_end = pending.find(b"\r\n")
                    if line_end < 0:
                        break
                    size = int(pending[:line_end] or b"0", 16)
                    if len(pending) < line_end + 2 + size + 2:
                        break
                    parts.append(pending[line_end + 2 : line_end + 2 + size])
                    pending = pending[line_end + 2 + size + 2 :]
                body = b"".join(parts)
            for event in parser.feed(body):
                self.events.append((received, event.event, event.data))
        self.raw.clear()

    def close(self) -> None:
        """Close the connection (idempotent)."""
        if self.protocol is not None and self.protocol.transport is not None:
            self.protocol.transport.close()
