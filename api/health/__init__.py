"""Liveness and readiness probes."""

from flask_smorest import Blueprint

blp = Blueprint("health", __name__, url_prefix="/health", description="Health checks")

from api.health import routes  # noqa: E402,F401  (registers the views on blp)
