"""Leaderboards: the full boards, the public preview and the on-demand recompute."""

from flask_smorest import Blueprint

blp = Blueprint(
    "leaderboards", __name__, url_prefix="/api/v1/leaderboards", description="Leaderboards"
)

from api.leaderboards import routes, status  # noqa: E402,F401  (registers the views)
