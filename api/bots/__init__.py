"""Bots: create, list, read, change and delete the caller's own bots."""

from flask_smorest import Blueprint

blp = Blueprint("bots", __name__, url_prefix="/api/v1/bots", description="Trading bots")

from api.bots import routes  # noqa: E402,F401  (registers the views on blp)
