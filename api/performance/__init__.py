"""Performance: how a bot's live runs have done, measured on the backtest metric set.

Routes under the bot's URL (``/api/v1/bots/{id}/...``) that read the performance area:
the backtest <-> live reconciliation for now (docs/reconciliation.md).
"""

from flask_smorest import Blueprint

blp = Blueprint(
    "performance",
    __name__,
    url_prefix="/api/v1/bots",
    description="Live performance of bots: reconciliation with their backtests",
)

from api.performance import reconciliation  # noqa: E402,F401  (registers the views on blp)
