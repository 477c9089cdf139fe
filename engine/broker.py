"""Risk options, account costs and the resumable broker state of a simulation.

The same three objects drive a backtest and a live paper run: the state after one call
of :func:`engine.simulator.simulate` is the input of the next, so a run can be cut at
any bar and resumed with exactly the same trades and equity.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, cast

from engine.params import Param, ParamError, Value, validate_values

Direction = Literal["long_only", "long_short"]
Sizing = Literal["all_in", "fraction"]
Pending = Literal["open_long", "open_short", "close", "reverse", "add"]
PENDING_ORDERS: tuple[str, ...] = ("open_long", "open_short", "close", "reverse", "add")

RISK_PARAMS: tuple[Param, ...] = (
    Param(
        "stop_loss",
        "float",
        None,
        "Exit when price moves this fraction against the entry price (0.05 = 5 %).",
        min=0.0001,
        max=0.99,
        nullable=True,
    ),
    Param(
        "take_profit",
        "float",
        None,
        "Exit when price moves this fraction in favour of the entry price.",
        min=0.0001,
        max=100,
        nullable=True,
    ),
    Param(
        "trailing_stop",
        "float",
        None,
        "Exit when price falls this fraction from the best price since entry.",
        min=0.0001,
        max=0.99,
        nullable=True,
    ),
    Param(
        "direction",
        "choice",
        "long_only",
        "long_only ignores short signals; long_short reverses on them.",
        choices=("long_only", "long_short"),
    ),
    Param(
        "sizing",
        "choice",
        "all_in",
        "all_in spends all cash on an entry; fraction spends that fraction of it.",
        choices=("all_in", "fraction"),
    ),
    Param("fraction", "float", 1.0, "Share of cash per entry when sizing is fraction.", 0.0001, 1),
)

CONFIG_PARAMS: tuple[Param, ...] = (
    Param("initial_capital", "float", 10_000.0, "Starting cash.", min=1, max=1e12),
    Param("fee", "float", 0.001, "Commission per fill, fraction of notional.", min=0, max=0.1),
    Param("slippage_bps", "float", 0.0, "Price slippage per fill, basis points.", 0, 1000),
    Param("fractional", "bool", True, "Whether fractions of a unit can be bought."),
    Param("size_precision", "int", 8, "Decimal places of fractional units.", min=0, max=12),
)


def _float(value: Value) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"expected a number, got {value!r}")
    return float(value)


def _optional_float(value: Value) -> float | None:
    return None if value is None else _float(value)


@dataclass(frozen=True)
class Risk:
    """Exits and sizing; stop and target distances are fractions of the entry price."""

    stop_loss: float | None = None
    take_profit: float | None = None
    trailing_stop: float | None = None
    direction: Direction = "long_only"
    sizing: Sizing = "all_in"
    fraction: float = 1.0

    def __post_init__(self) -> None:
        validate_values(RISK_PARAMS, self.as_dict())

    @property
    def has_exits(self) -> bool:
        """Whether any intrabar exit is set."""
        return any(x is not None for x in (self.stop_loss, self.take_profit, self.trailing_stop))

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe form (the input of :func:`validate_risk`)."""
        return dict(vars(self))  # every field is a scalar: a shallow copy is the whole state


@dataclass(frozen=True)
class BrokerConfig:
    """Account and costs: capital, commission, slippage and the unit size of fills."""

    initial_capital: float = 10_000.0
    fee: float = 0.001
    slippage_bps: float = 0.0
    fractional: bool = True
    size_precision: int = 8

    def __post_init__(self) -> None:
        validate_values(CONFIG_PARAMS, self.as_dict())

    @property
    def unit_scale(self) -> int:
        """Units are whole multiples of ``1 / unit_scale``."""
        return 10**self.size_precision if self.fractional else 1

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe form (the input of :func:`validate_config`)."""
        return dict(vars(self))


def validate_risk(obj: object) -> Risk:
    """Risk options from JSON, defaults filled in; raises ParamError per field."""
    v = validate_values(RISK_PARAMS, obj)
    return Risk(
        stop_loss=_optional_float(v["stop_loss"]),
        take_profit=_optional_float(v["take_profit"]),
        trailing_stop=_optional_float(v["trailing_stop"]),
        direction=cast(Direction, v["direction"]),
        sizing=cast(Sizing, v["sizing"]),
        fraction=_float(v["fraction"]),
    )


def validate_config(obj: object) -> BrokerConfig:
    """Account options from JSON, defaults filled in; raises ParamError per field."""
    v = validate_values(CONFIG_PARAMS, obj)
    return BrokerConfig(
        initial_capital=_float(v["initial_capital"]),
        fee=_float(v["fee"]),
        slippage_bps=_float(v["slippage_bps"]),
        fractional=bool(v["fractional"]),
        size_precision=int(_float(v["size_precision"])),
    )


@dataclass(frozen=True)
class BrokerState:
    """Everything a simulation needs to continue after its last bar.

    ``units`` is signed (> 0 long, < 0 short). ``entry_price`` is the average fill price
    of the open position and ``entry_fees`` the commission paid on its entry fill(s).
    ``best_price`` is the highest (long) or lowest (short) price since entry up to the
    last processed bar, tracked only while a trailing stop is set. ``pending`` is the
    order decided on the last bar's close, to fill at the next bar's open. ``bars_done``
    is the global index of the next bar and ``last_ts`` the ts of the last bar seen.
    """

    cash: float
    units: float = 0.0
    entry_price: float = 0.0
    entry_ts: int = 0
    entry_bar: int = -1
    entry_fees: float = 0.0
    best_price: float = 0.0
    pending: Pending | None = None
    bars_done: int = 0
    last_ts: int | None = None

    def __post_init__(self) -> None:
        if self.pending is not None and self.pending not in PENDING_ORDERS:
            raise ParamError({"pending": [f"must be one of: {', '.join(PENDING_ORDERS)}"]})

    @classmethod
    def start(cls, config: BrokerConfig) -> BrokerState:
        """A flat account holding the initial capital, before any bar."""
        return cls(cash=config.initial_capital)

    @property
    def side(self) -> int:
        """+1 long, -1 short, 0 flat."""
        return (self.units > 0) - (self.units < 0)

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe form, e.g. to store a live run between ticks."""
        return dict(vars(self))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BrokerState:
        """The state stored by :meth:`as_dict`."""
        return cls(**dict(data))
