"""Backtests: queue one, follow it, read its trades and equity, cancel it."""

from flask_smorest import Blueprint

blp = Blueprint("backtests", __name__, url_prefix="/api/v1/backtests", description="Backtests")

from api.backtests import comparison, routes  # noqa: E402,F401  (registers the views)
