"""The data export document: everything a user owns, written as one gzip-compressed JSON object.

Rows are read as plain tuples (never ORM objects) and the big tables (equity, logs) are
streamed from a server-side cursor in batches, so a run with a million equity points
costs memory for the compressed output only. Secrets never go in: no password hash, no
webhook secret, no token hash. The shape is documented in docs/accounts.md.
"""

from __future__ import annotations

import gzip
import io
import uuid
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from typing import IO, Any

import orjson
from sqlalchemy import Select, select

from models.backtests.backtests import Backtest, BacktestTrade
from models.bots.bots import Bot
from models.bots.execution_logs import ExecutionLog
from models.bots.runs import BotRun
from models.bots.ticks import BotEquity, BotTrade
from models.db import session as db
from models.identity.tables import AuthSession, User
from models.market.tables import Instrument
from models.people.preferences import effective_settings
from models.people.tables import Activity, Notification, Webhook
from models.trades import TRADE_COLUMNS

EXPORT_FORMAT = "botyard-export/1"
# Rows fetched per round trip from the server-side cursor of a streamed table.
STREAM_BATCH = 5_000

PROFILE_COLUMNS = (
    User.id,
    User.email,
    User.username,
    User.display_name,
    User.bio,
    User.avatar_url,
    User.timezone,
    User.locale,
    User.created_at,
    User.last_login_at,
)
BOT_COLUMNS = (
    Bot.id,
    Bot.name,
    Bot.description,
    Instrument.symbol,
    Bot.timeframe,
    Bot.strategy,
    Bot.risk,
    Bot.initial_capital,
    Bot.fee,
    Bot.slippage_bps,
    Bot.status,
    Bot.schedule,
    Bot.created_at,
    Bot.updated_at,
)
RUN_COLUMNS = (
    BotRun.id,
    BotRun.bot_id,
    BotRun.status,
    BotRun.started_at,
    BotRun.paused_at,
    BotRun.stopped_at,
    BotRun.initial_capital,
    BotRun.broker_state,
    BotRun.last_candle_ts,
    BotRun.error,
)
BACKTEST_COLUMNS = (
    Backtest.id,
    Backtest.bot_id,
    Backtest.spec,
    Backtest.status,
    Backtest.created_at,
    Backtest.started_at,
    Backtest.finished_at,
    Backtest.error,
    Backtest.bars,
    Backtest.metrics,
    Backtest.open_position,
)
WEBHOOK_COLUMNS = (  # never the secret
    Webhook.id,
    Webhook.url,
    Webhook.events,
    Webhook.description,
    Webhook.is_active,
    Webhook.disabled_at,
    Webhook.disabled_reason,
    Webhook.created_at,
)
SESSION_COLUMNS = (  # never the refresh token's id
    AuthSession.id,
    AuthSession.created_at,
    AuthSession.last_seen_at,
    AuthSession.expires_at,
    AuthSession.revoked_at,
    AuthSession.revoked_reason,
    AuthSession.ip,
    AuthSession.user_agent,
)
NOTIFICATION_COLUMNS = (
    Notification.id,
    Notification.event,
    Notification.data,
    Notification.in_app,
    Notification.created_at,
    Notification.read_at,
)
ACTIVITY_COLUMNS = (
    Activity.id,
    Activity.verb,
    Activity.object_type,
    Activity.object_id,
    Activity.data,
    Activity.ip,
    Activity.user_agent,
    Activity.created_at,
)


def _json(value: Any) -> bytes:
    # default=str: INET addresses and anything else without a JSON form become strings.
    return orjson.dumps(value, default=str, option=orjson.OPT_UTC_Z)


class _Writer:
    """Writes one JSON object key by key; arrays are written element by element."""

    def __init__(self, out: IO[bytes]) -> None:
        self.out = out
        self.first_key = True

    def open(self) -> None:
        self.out.write(b"{")

    def close(self) -> None:
        self.out.write(b"}")

    def key(self, name: str) -> None:
        self.out.write(b"" if self.first_key else b",")
        self.first_key = False
        self.out.write(_json(name) + b":")

    def value(self, name: str, value: Any) -> None:
        self.key(name)
        self.out.write(_json(value))

    def array(self, items: Iterable[Any]) -> None:
        self.out.write(b"[")
        for i, item in enumerate(items):
            if i:
                self.out.write(b",")
            if isinstance(item, _Nested):
                item.write(self)
            else:
                self.out.write(_json(item))
        self.out.write(b"]")


class _Nested:
    """An object whose fields are known plus arrays streamed after them."""

    def __init__(self, fields: Mapping[str, Any], arrays: dict[str, Iterable[Any]]) -> None:
        self.fields, self.arrays = fields, arrays

    def write(self, writer: _Writer) -> None:
        inner = _Writer(writer.out)
        inner.open()
        for name, value in self.fields.items():
            inner.value(name, value)
        for name, items in self.arrays.items():
            inner.key(name)
            inner.array(items)
        inner.close()


def _rows(stmt: Select[*tuple[Any, ...]]) -> Iterator[dict[str, Any]]:
    """Each row of ``stmt`` as a dict, from a server-side cursor in batches."""
    result = db.execute(stmt.execution_options(yield_per=STREAM_BATCH))
    for row in result:
        yield dict(row._mapping)


def _pairs(stmt: Select[*tuple[Any, ...]]) -> Iterator[list[Any]]:
    """Each row of ``stmt`` as a list (equity points: ``[ts, equity]``), streamed."""
    for row in db.execute(stmt.execution_options(yield_per=STREAM_BATCH)):
        yield list(row)


def _trade_columns(model: Any) -> list[Any]:
    return [getattr(model, name) for name in TRADE_COLUMNS]


def _runs(user_id: uuid.UUID) -> Iterator[_Nested]:
    runs = list(
        db.execute(
            select(*RUN_COLUMNS)
            .where(BotRun.owner_id == user_id)
            .order_by(BotRun.started_at, BotRun.id)
        ).mappings()
    )
    for run in runs:
        run_id = run["id"]
        trades = select(BotTrade.client_order_id, *_trade_columns(BotTrade)).where(
            BotTrade.run_id == run_id
        )
        equity = select(BotEquity.ts, BotEquity.equity).where(BotEquity.run_id == run_id)
        logs = select(
            ExecutionLog.ts,
            ExecutionLog.level,
            ExecutionLog.event,
            ExecutionLog.data,
            ExecutionLog.candle_ts,
        ).where(ExecutionLog.bot_id == run["bot_id"], ExecutionLog.run_id == run_id)
        yield _Nested(
            dict(run),
            {
                "trades": _rows(trades.order_by(BotTrade.exit_ts, BotTrade.client_order_id)),
                "equity": _pairs(equity.order_by(BotEquity.ts)),
                "logs": _rows(logs.order_by(ExecutionLog.id)),
            },
        )


def _backtests(user_id: uuid.UUID) -> Iterator[_Nested]:
    backtests = list(
        db.execute(
            select(*BACKTEST_COLUMNS)
            .where(Backtest.owner_id == user_id)
            .order_by(Backtest.created_at, Backtest.id)
        ).mappings()
    )
    for backtest in backtests:
        trades = (
            select(BacktestTrade.seq, *_trade_columns(BacktestTrade))
            .where(BacktestTrade.backtest_id == backtest["id"])
            .order_by(BacktestTrade.seq)
        )
        yield _Nested(dict(backtest), {"trades": _rows(trades)})


def _profile(user_id: uuid.UUID) -> dict[str, Any]:
    row = db.execute(select(*PROFILE_COLUMNS).where(User.id == user_id)).mappings().one()
    user = db.get(User, user_id)
    return {**row, "roles": user.role_names if user is not None else []}


def write_document(user_id: uuid.UUID, out: IO[bytes], generated_at: datetime) -> None:
    """Write the export of ``user_id`` as JSON to ``out`` (see docs/accounts.md for the shape)."""
    writer = _Writer(out)
    writer.open()
    writer.value("format", EXPORT_FORMAT)
    writer.value("generated_at", generated_at)
    writer.value("profile", _profile(user_id))
    writer.value("settings", effective_settings(user_id))
    sections: dict[str, Iterable[Any]] = {
        "bots": _rows(
            select(*BOT_COLUMNS)
            .join(Instrument, Instrument.id == Bot.instrument_id)
            .where(Bot.owner_id == user_id)
            .order_by(Bot.created_at, Bot.id)
        ),
        "runs": _runs(user_id),
        "backtests": _backtests(user_id),
        "notifications": _rows(
            select(*NOTIFICATION_COLUMNS)
            .where(Notification.user_id == user_id)
            .order_by(Notification.id)
        ),
        "activity": _rows(
            select(*ACTIVITY_COLUMNS).where(Activity.actor_id == user_id).order_by(Activity.id)
        ),
        "webhooks": _rows(
            select(*WEBHOOK_COLUMNS).where(Webhook.user_id == user_id).order_by(Webhook.created_at)
        ),
        "sessions": _rows(
            select(*SESSION_COLUMNS)
            .where(AuthSession.user_id == user_id)
            .order_by(AuthSession.created_at)
        ),
    }
    for name, items in sections.items():
        writer.key(name)
        writer.array(items)
    writer.close()


def build_gzip(user_id: uuid.UUID, generated_at: datetime) -> bytes:
    """The export of ``user_id``, gzip-compressed (the bytes a download sends)."""
    buffer = io.BytesIO()
    # mtime=0: the same document compresses to the same bytes.
    with gzip.GzipFile(fileobj=buffer, mode="wb", compresslevel=6, mtime=0) as compressed:
        write_document(user_id, compressed, generated_at)  # type: ignore[arg-type]
    return buffer.getvalue()
