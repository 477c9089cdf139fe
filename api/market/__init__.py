"""Market data: instruments, quotes, candles and the real-time stream."""

from flask_smorest import Blueprint

blp = Blueprint(
    "market", __name__, url_prefix="/api/v1/market", description="Instruments and candles"
)

from api.market import routes  # noqa: E402,F401  (registers the views on blp)
