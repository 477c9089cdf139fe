"""Bots: the caller's own bots, their fields and their lifecycle (start, pause, resume, stop)."""

from flask_smorest import Blueprint

blp = Blueprint("bots", __name__, url_prefix="/api/v1/bots", description="Trading bots")

from api.bots import lifecycle, logs, results, routes  # noqa: E402,F401  (registers the views on blp)
