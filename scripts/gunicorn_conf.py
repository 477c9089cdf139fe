"""gunicorn settings for the `web` process (threaded workers, loopback by default).

Threads rather than processes alone so that long-lived SSE streams (market
data) occupy a thread, not a whole worker. Our own request log replaces
gunicorn's access log, which would print query strings verbatim.
"""

import multiprocessing
import os

bind = os.environ.get("WEB_BIND", "127.0.0.1:" + os.environ.get("WEB_PORT", "8000"))
# gthread, with gunicorn's own error pages (414, 431, 400 ...) in the API's JSON error shape.
worker_class = "api.gunicorn_worker.JsonErrorThreadWorker"
workers = int(os.environ.get("WEB_CONCURRENCY", min(4, multiprocessing.cpu_count())))
# An open SSE stream holds a thread; the app caps streams at threads - 16 per process
# (WEB_MAX_STREAMS), so ordinary requests always find a free one.
threads = int(os.environ.get("WEB_THREADS", "64"))
worker_connections = threads + 256
timeout = 30
graceful_timeout = 20
keepalive = 5
accesslog = None
errorlog = "-"
