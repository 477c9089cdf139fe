"""Schemas shared across areas: the user, paging, and the trade and equity shapes of runs."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar

import marshmallow as ma

# The metric set's version is part of the contract: MetricsOut documents it.
from engine.ledger import EXIT_REASONS
from engine.metrics import METRICS_VERSION
from models.market.tables import TIMEFRAME_MS


class StrictSchema(ma.Schema):
    """Unknown fields are an error, never silently assigned."""

    class Meta:
        unknown = ma.RAISE


class OutSchema(ma.Schema):
    """A response body whose every field is always sent (null where ``allow_none``).

    The OpenAPI document marks every field of an ``OutSchema`` ``required`` (see
    api/openapi.py), so generated clients type them as always present. A field a view
    may leave out is named in ``optional``.
    """

    optional: ClassVar[frozenset[str]] = frozenset()


def one_of(
    values: Iterable[str], names: Mapping[str, str] | None = None, **metadata: Any
) -> dict[str, Any]:
    """Field keywords for a string enum whose members have names in generated clients.

    Values that are identifiers name themselves (``draft`` -> ``DRAFT``); others take
    their name from ``names`` (``1h`` -> ``H1``), published as ``x-enum-varnames``.
    ``metadata`` (a description, say) joins the field's metadata.
    """
    choices = list(values)
    varnames = [(names or {}).get(value, value).upper() for value in choices]
    return {
        "validate": ma.validate.OneOf(choices),
        "metadata": {**metadata, "x-enum-varnames": varnames},
    }


def timeframe_enum(**metadata: Any) -> dict[str, Any]:
    """Field keywords for a timeframe (``1m`` ... ``1d``; members ``M1`` ... ``D1``)."""
    return one_of(TIMEFRAME_MS, {tf: tf[-1] + tf[:-1] for tf in TIMEFRAME_MS}, **metadata)


# A time the API sends as a string (UTC ISO 8601): the metadata of such a String field.
DATE_TIME = {"format": "date-time"}


class UserOut(OutSchema):
    """An account as its owner or an admin sees it (never the password hash)."""

    id = ma.fields.UUID(dump_only=True)
    email = ma.fields.String()
    username = ma.fields.String()
    display_name = ma.fields.String(allow_none=True)
    bio = ma.fields.String(allow_none=True)
    avatar_url = ma.fields.String(allow_none=True)
    timezone = ma.fields.String(allow_none=True, metadata={"description": "IANA name"})
    locale = ma.fields.String(allow_none=True, metadata={"description": "BCP 47 language tag"})
    is_active = ma.fields.Boolean()
    roles = ma.fields.List(ma.fields.String(), attribute="role_names")
    permissions = ma.fields.List(ma.fields.String(), attribute="permission_names")
    created_at = ma.fields.DateTime()
    last_login_at = ma.fields.DateTime(allow_none=True)
    disabled_at = ma.fields.DateTime(allow_none=True)


class PageQuery(StrictSchema):
    """``page`` from 1, ``page_size`` up to the endpoint's maximum."""

    page = ma.fields.Integer(load_default=1, validate=ma.validate.Range(min=1, max=100_000))
    page_size = ma.fields.Integer(load_default=20, validate=ma.validate.Range(min=1, max=100))


# Times the API takes, from either spelling, lie in [1970, 2100]: the same range for epoch
# milliseconds and ISO 8601 (an ISO time used to bypass it, and years 1 and 9999 with an
# offset overflowed Python's datetime on conversion to UTC: a 500, issue 12).
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)
LATEST_MS = 4_102_444_800_000
TIME_RANGE_MESSAGE = "Times must be between 1970-01-01 and 2100-01-01 (UTC)."


def utc_in_range(value: datetime) -> datetime:
    """An aware ``value`` in UTC; ValidationError outside [1970, 2100] or past datetime's range."""
    try:
        utc = value.astimezone(UTC)
    except OverflowError as exc:
        raise ma.ValidationError(TIME_RANGE_MESSAGE) from exc
    if not EARLIEST <= utc <= LATEST:
        raise ma.ValidationError(TIME_RANGE_MESSAGE)
    return utc


class UtcDateTime(ma.fields.AwareDateTime):
    """An ISO 8601 time (UTC when no offset is given), loaded in UTC within [1970, 2100]."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(default_timezone=UTC, **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> datetime:
        return utc_in_range(super()._deserialize(value, attr, data, **kwargs))


class Timestamp(ma.fields.Field[int]):
    """Epoch milliseconds or an ISO 8601 time (UTC assumed when no offset is given)."""

    OPENAPI: ClassVar[dict[str, Any]] = {
        "oneOf": [
            {
                "type": "integer",
                "format": "int64",
                "minimum": 0,
                "maximum": LATEST_MS,
                "description": "epoch milliseconds",
            },
            {"type": "string", "format": "date-time", "minLength": 1},
        ]
    }

    def __init__(self, **kwargs: Any) -> None:
        kwargs["metadata"] = {**self.OPENAPI, **kwargs.get("metadata", {})}
        super().__init__(**kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        text = str(value).strip()
        digits = text.lstrip("-")
        if digits.isascii() and digits.isdigit():  # not "²", which isdigit() accepts
            if len(digits) > 16:  # no int() of a 4,000-digit string
                raise ma.ValidationError(TIME_RANGE_MESSAGE)
            number = int(text)
            if not 0 <= number <= LATEST_MS:
                raise ma.ValidationError(TIME_RANGE_MESSAGE)
            return number
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError as exc:
            raise ma.ValidationError(
                "Use epoch milliseconds or ISO 8601, e.g. 2026-01-31T00:00:00Z."
            ) from exc
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return int(utc_in_range(parsed).timestamp() * 1000)


MAX_EQUITY_PAGE = 5000


class TradeOut(OutSchema):
    """A closed trade."""

    seq = ma.fields.Integer()
    side = ma.fields.String(**one_of(["long", "short"]))
    units = ma.fields.Float()
    entry_time = ma.fields.DateTime()
    entry_price = ma.fields.Float()
    exit_time = ma.fields.DateTime()
    exit_price = ma.fields.Float()
    fees = ma.fields.Float()
    pnl = ma.fields.Float()
    pnl_pct = ma.fields.Float()
    exit_reason = ma.fields.String(**one_of(EXIT_REASONS))


class EquityQuery(StrictSchema):
    """``points`` for a chart (downsampled), or ``cursor``/``limit`` to page through every bar."""

    points = ma.fields.Integer(validate=ma.validate.Range(min=2, max=5000))
    cursor = Timestamp(metadata={"description": "next_cursor of the previous page"})
    limit = ma.fields.Integer(
        load_default=1000, validate=ma.validate.Range(min=1, max=MAX_EQUITY_PAGE)
    )

    @ma.validates_schema
    def _one_mode(self, data: dict[str, object], **_kwargs: object) -> None:
        if "points" in data and "cursor" in data:
            raise ma.ValidationError("Use points (a chart) or cursor (paging), not both.", "points")


EQUITY_ROW = {
    "type": "array",
    "items": {"type": "number"},
    "minItems": 2,
    "maxItems": 2,
    "description": "[ts_ms (integer), equity]",
}


class EquityOut(OutSchema):
    """Rows are ``[ts_ms, equity]`` at bar closes, oldest first."""

    # Raw: the ts stays an integer (a Float field would send 1767225600000.0).
    rows = ma.fields.List(ma.fields.Raw(metadata=EQUITY_ROW))
    total = ma.fields.Integer(metadata={"description": "Bars in the full curve"})
    next_cursor = ma.fields.Integer(allow_none=True)


def _metric(
    description: str, *, nullable: bool = True, integer: bool = False
) -> ma.fields.Field[Any]:
    field = ma.fields.Integer if integer else ma.fields.Float
    return field(allow_none=nullable, metadata={"description": description})


class MetricsOut(OutSchema):
    """The metric set of a backtest or a live run (docs/metrics.md).

    Fixed and versioned: the set and its definitions are those of the ``metrics_version``
    sent beside it (now ``{version}``); fractions are plain ratios (0.25 = 25 %); null
    where a metric is undefined, never NaN.
    """

    bars = _metric("Bars in the series", nullable=False, integer=True)
    start_ts = _metric("Open time of the first bar, epoch ms", integer=True)
    end_ts = _metric("Open time of the last bar, epoch ms", integer=True)
    days = _metric("Span D in days, first open to last close", nullable=False)
    initial_equity = _metric("Initial capital E0", nullable=False)
    final_equity = _metric("Equity at the last close", nullable=False)
    total_return = _metric("e[last] / E0 - 1")
    annualized_return = _metric("(e[last] / E0)^(365 / D) - 1; null when D < 2")
    annualized_volatility = _metric("Sample stdev of daily returns x sqrt(365)")
    sharpe = _metric("mean / stdev of daily returns x sqrt(365), risk-free rate 0")
    sortino = _metric("mean daily return / downside deviation x sqrt(365), target 0")
    calmar = _metric("annualized_return / max_drawdown")
    max_drawdown = _metric("Largest fall from a running peak, a fraction", nullable=False)
    max_drawdown_duration_ms = _metric(
        "Longest spell under a peak, ms", nullable=False, integer=True
    )
    max_drawdown_duration_bars = _metric(
        "Longest spell under a peak, bars", nullable=False, integer=True
    )
    trades = _metric("Closed trades", nullable=False, integer=True)
    win_rate = _metric("Trades with pnl > 0 / trades")
    profit_factor = _metric("Sum of gains / |sum of losses|; null without a losing trade")
    expectancy = _metric("Mean pnl per trade, quote currency")
    expectancy_pct = _metric("Mean pnl_pct per trade")
    exposure = _metric("Bars whose close sees a position / bars")
    buy_and_hold_return = _metric("close[last] / open[0] - 1 over the same bars, no costs")


MetricsOut.__doc__ = (MetricsOut.__doc__ or "").replace("{version}", METRICS_VERSION)


class RiskOut(OutSchema):
    """Risk options in their canonical form (defaults filled in)."""

    stop_loss = ma.fields.Float(allow_none=True, metadata={"description": "fraction of entry"})
    take_profit = ma.fields.Float(allow_none=True, metadata={"description": "fraction of entry"})
    trailing_stop = ma.fields.Float(allow_none=True, metadata={"description": "fraction"})
    direction = ma.fields.String(**one_of(["long_only", "long_short"]))
    sizing = ma.fields.String(**one_of(["all_in", "fraction"]))
    fraction = ma.fields.Float(metadata={"description": "of equity, with sizing=fraction"})


class StrategyOut(OutSchema):
    """A canonical strategy: a ``template`` with its ``params``, or declarative ``rules``."""

    optional = frozenset({"template", "params", "rules"})

    template = ma.fields.String()
    params = ma.fields.Dict(
        keys=ma.fields.String(), metadata={"description": "per the template's parameter schema"}
    )
    rules = ma.fields.Dict(
        keys=ma.fields.String(), metadata={"description": "the rule tree (GET /strategies)"}
    )
