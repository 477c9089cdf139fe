"""Market data: instruments, quotes, candles and the real-time stream."""

from typing import Any

from flask import request
from flask_smorest import Blueprint
from webargs.flaskparser import FlaskParser


class FastQueryParser(FlaskParser):
    """webargs' parser, except that a query schema with ``fast_load`` may answer first.

    ``fast_load`` returns what the schema's ``load`` would for input it accepts as it is,
    and None otherwise; then the usual parsing runs, with its usual errors.
    """

    def parse(self, argmap: Any, req: Any = None, *, location: str | None = None, **kw: Any) -> Any:
        fast_load = getattr(argmap, "fast_load", None)
        if location == "query" and fast_load is not None:
            parsed = fast_load((req or request).args)
            if parsed is not None:
                return parsed
        return super().parse(argmap, req, location=location, **kw)


class MarketBlueprint(Blueprint):  # type: ignore[misc]
    """The market area's blueprint: parses queries with :class:`FastQueryParser`."""

    ARGUMENTS_PARSER = FastQueryParser()


blp = MarketBlueprint(
    "market", __name__, url_prefix="/api/v1/market", description="Instruments and candles"
)

from api.market import routes  # noqa: E402,F401  (registers the views on blp)
