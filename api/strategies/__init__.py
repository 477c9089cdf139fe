"""The strategy catalogue: templates, their parameter schemas, risk options, rule grammar."""

from flask_smorest import Blueprint

blp = Blueprint(
    "strategies", __name__, url_prefix="/api/v1/strategies", description="Strategy catalogue"
)

from api.strategies import routes  # noqa: E402,F401  (registers the views on blp)
