"""The `streams` process: the long-lived SSE endpoints on an evented server (see server.py)."""
