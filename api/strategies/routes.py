"""``GET /api/v1/strategies``: what a bot can be built from (public, cacheable)."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView

from api.access import public
from api.strategies import blp
from api.strategies.schemas import StrategyCatalogueOut
from models.bots.strategy_specs import strategy_catalogue


@blp.route("")
class Strategies(MethodView):
    @public
    @blp.doc(operationId="listStrategies", security=[])
    @blp.response(200, StrategyCatalogueOut)
    def get(self) -> dict[str, Any]:
        """Strategy templates with parameter schemas, risk options and the rule grammar."""
        return strategy_catalogue()
