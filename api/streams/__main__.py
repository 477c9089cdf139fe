"""``python -m api.streams``: the Procfile's `streams` process.

The same app as ``web`` (``create_app`` with the same settings), served by the
evented server of ``api.streams.server`` on ``STREAMS_HOST:STREAMS_PORT``.
SIGTERM or SIGINT ends every stream (clients reconnect and resume) and exits.
"""

from __future__ import annotations

import asyncio
import gc
import os
import resource
import signal

import structlog

from api.app import create_app
from api.streams.server import StreamsServer
from settings import Settings

log = structlog.get_logger("botyard.streams")
SPARE_FILES = 512  # the listening socket, Redis, Postgres, logs, connections being refused


def raise_open_files(wanted: int) -> int:
    """Raise this process's soft open-files limit towards ``wanted`` (up to the hard limit).

    A process that is to hold 10,000 streams needs 10,000 descriptors; the usual soft
    limit (1,024) would fail the 1,025th ``accept``.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return soft


async def _serve(server: StreamsServer) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await server.serve(stop)


def main() -> None:
    """Build the app, check the open-files limit, serve until told to stop."""
    settings = Settings.from_env(os.environ)
    app = create_app(settings)
    wanted = settings.sse_max_streams_per_process + SPARE_FILES
    limit = raise_open_files(wanted)
    if limit < wanted:
        log.warning("streams_open_files_limit_low", limit=limit, wanted=wanted)
    server = StreamsServer(
        app, settings.streams_host, settings.streams_port, settings.streams_threads
    )
    # The app's objects live as long as the process: keep them out of every garbage
    # collection, whose full passes would otherwise walk them while streams wait.
    gc.collect()
    gc.freeze()
    asyncio.run(_serve(server))


if __name__ == "__main__":
    main()
