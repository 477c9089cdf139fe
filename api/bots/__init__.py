"""Bots: the caller's own bots, their fields and their lifecycle (start, pause, resume, stop)."""

from flask_smorest import Blueprint

blp = Blueprint("bots", __name__, url_prefix="/api/v1/bots", description="Trading bots")

# The OpenAPI description of every bots route's 404 (anyone else's bot is a 404 too).
NOT_FOUND = "No such bot of mine"

from api.bots import lifecycle, logs, results, routes  # noqa: E402,F401  (registers the views on blp)
