"""A client generated from /api/openapi.json drives the whole flow, every response typed.

openapi-python-client generates a package from the served document into a temporary
folder (once per session: it takes a second or two); the test imports it and talks to
the real app through ``httpx.WSGITransport``, bound to the test database. A recursive
check fails on any response that parses to None, to ``Unset`` or to an untyped dict
where the document has a schema.
"""

from __future__ import annotations

import importlib
import itertools
import json
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from enum import Enum
from types import ModuleType
from typing import Any

import attrs
import httpx
import pytest
from flask import Flask
from sqlalchemy import text

from models.bots.bots import Bot
from models.performance.tables import RunPerformance
from tests import leaderboard_world as world
from tests.helpers import PASSWORD, load_btc_history
from workers.main import build_worker
from workers.queues import BACKTESTS, DEFAULT
from workers.ticks import tick_bots

PACKAGE = "botyard_contract_client"
HOUR = 3_600_000
DAY = 24 * HOUR
# Models whose keys are open by design (see FREE_FORM in test_openapi_contract.py).
FREE_FORM_MODELS = {
    "StrategyOutParams",
    "StrategyOutRules",
    "StrategyInParams",
    "StrategyCatalogueOutRules",
    "BotRunOutBrokerState",
    "BotLogOutData",
    "ActivityOutData",
}
# Fields the document marks optional, left out where they do not apply.
MAY_BE_UNSET = {
    ("StrategyOut", "rules"),  # a template strategy
    ("ParamOut", "min"),  # a bool or choice parameter
    ("ParamOut", "max"),
    ("ParamOut", "choices"),  # not a choice parameter
}


@pytest.fixture(scope="session")
def generated(app: Flask, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    """The client package generated from the app's document, imported."""
    folder = tmp_path_factory.mktemp("client")
    response = app.test_client().get("/api/openapi.json")
    assert response.status_code == 200
    document = folder / "openapi.json"
    document.write_text(json.dumps(response.json))
    config = folder / "config.json"
    # No post hooks: they would run ruff over the output, which the test does not need.
    config.write_text(json.dumps({"post_hooks": [], "package_name_override": PACKAGE}))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "openapi_python_client",
            "generate",
            "--path",
            str(document),
            "--config",
            str(config),
            "--meta",
            "none",
            "--output-path",
            str(folder / PACKAGE),
            "--fail-on-warning",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    sys.path.insert(0, str(folder))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(folder))
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(f"{PACKAGE}.")]:
            del sys.modules[name]


class Api:
    """The generated package's operations and models, called as a client would."""

    def __init__(self, package: ModuleType, app: Flask) -> None:
        self.package, self.app = package, app
        self.called: set[str] = set()
        self.models = importlib.import_module(f"{PACKAGE}.models")
        self.types = importlib.import_module(f"{PACKAGE}.types")

    def client(self, token: str | None = None) -> Any:
        """A generated Client (AuthenticatedClient with a token) over the WSGI app."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        # The generated client's documented hook: our own httpx client, here with a
        # transport that calls the Flask app in-process (same test database).
        http = httpx.Client(
            transport=httpx.WSGITransport(app=self.app),
            base_url="http://botyard.test",
            headers=headers,
        )
        client_module = importlib.import_module(f"{PACKAGE}.client")
        if token is None:
            return client_module.Client(base_url="http://botyard.test").set_httpx_client(http)
        made = client_module.AuthenticatedClient(base_url="http://botyard.test", token=token)
        return made.set_httpx_client(http)

    def call(self, operation: str, client: Any, status: int, *args: Any, **kwargs: Any) -> Any:
        """Call ``tag.operation``; assert the status and that the body is fully typed."""
        tag, name = operation.split(".")
        self.called.add(operation)
        module = importlib.import_module(f"{PACKAGE}.api.{tag}.{name}")
        response = module.sync_detailed(*args, client=client, **kwargs)
        assert response.status_code == status, (operation, response.content[:500])
        if status == 204:
            assert response.content == b""
            return None
        assert response.parsed is not None, f"{operation} parsed to None"
        self.check_typed(response.parsed, operation)
        return response.parsed

    def check_typed(self, value: Any, where: str) -> None:
        """Fail on Unset, on plain dicts, and on unknown keys kept by a typed model."""
        assert not isinstance(value, self.types.Unset), f"{where} is Unset"
        if isinstance(value, list):
            for i, item in enumerate(value):
                self.check_typed(item, f"{where}[{i}]")
            return
        assert not isinstance(value, dict), f"{where} is an untyped dict"
        if not attrs.has(type(value)):
            assert value is None or isinstance(
                value, str | int | float | bool | Enum | datetime | uuid.UUID
            )
            assert type(value).__module__.split(".")[0] != PACKAGE or isinstance(value, Enum)
            return
        model = type(value).__name__
        declared = [f.name for f in attrs.fields(type(value)) if f.name != "additional_properties"]
        # Our response schemas forbid unknown keys, so most models have no such attribute.
        extra = getattr(value, "additional_properties", {})
        if declared:
            assert extra == {}, f"{where} ({model}) got unknown keys {sorted(extra)}"
        elif model not in FREE_FORM_MODELS:  # a map of typed values, like health checks
            for key, item in extra.items():
                assert attrs.has(type(item)), f"{where}[{key}] is not a model"
                self.check_typed(item, f"{where}[{key}]")
        for name in declared:
            item = getattr(value, name)
            # Python names shadowing builtins get a trailing underscore (min -> min_).
            if isinstance(item, self.types.Unset) and (model, name.rstrip("_")) in MAY_BE_UNSET:
                continue
            self.check_typed(item, f"{where}.{name}")


@pytest.fixture
def api(generated: ModuleType, app: Flask, db: Any) -> Api:
    return Api(generated, app)


def raw_json(client: Any, path: str) -> Any:
    """The same endpoint's JSON, read without the generated models."""
    response = client.get_httpx_client().get(path)
    assert response.status_code == 200
    return response.json()


def ms(value: datetime) -> int:
    return int(value.timestamp() * 1000)


def test_the_whole_flow_through_the_generated_client(
    api: Api, app: Flask, db: Any, make_user: Callable[..., Any]
) -> None:
    m = api.models
    now_hour = int(time.time() * 1000) // HOUR * HOUR
    load_btc_history(now_hour - 6 * DAY, now_hour)
    db.commit()
    anonymous = api.client()

    # Accounts and sessions.
    name = f"gen_{uuid.uuid4().hex[:8]}"
    registered = api.call(
        "auth.register",
        anonymous,
        201,
        body=m.RegisterIn(email=f"{name}@example.com", username=name, password=PASSWORD),
    )
    assert isinstance(registered, m.UserOut) and registered.roles == ["user"]
    tokens = api.call("auth.login", anonymous, 200, body=m.LoginIn(login=name, password=PASSWORD))
    assert isinstance(tokens, m.TokensOut) and tokens.session.current is True
    refreshed = api.call("auth.refresh_tokens", api.client(tokens.refresh_token), 200)
    assert refreshed.session.id == tokens.session.id
    assert refreshed.refresh_token != tokens.refresh_token
    me = api.client(refreshed.access_token)
    assert api.call("me.get_me", me, 200).username == name
    health = api.call("health.get_readiness", anonymous, 200)
    assert set(health.checks.additional_properties) == {"postgres", "redis", "migrations"}

    # Market data.
    page = api.call("market.list_instruments", anonymous, 200, q="BTC")
    btc = next(i for i in page.items if i.symbol == "BTC-USD")
    assert isinstance(btc, m.InstrumentOut) and btc.timeframes[0].value == btc.base_timeframe
    assert api.call("market.get_quote", anonymous, 200, "BTC-USD").price > 0
    start = datetime.fromtimestamp((now_hour - DAY) / 1000, UTC)
    for timeframe, step in ((m.ListCandlesTimeframe.M1, 60_000), (m.ListCandlesTimeframe.H1, HOUR)):
        candles = api.call(
            "market.list_candles", anonymous, 200, "BTC-USD", timeframe=timeframe, start=start
        )
        assert candles.timeframe.value == timeframe.value and len(candles.rows) > 20
        stamps = [row[0] for row in candles.rows]
        assert stamps[0] == ms(start)
        assert all(b - a == step for a, b in itertools.pairwise(stamps))
        assert all(len(row) == 6 for row in candles.rows)

    # Strategies and a bot.
    catalogue = api.call("strategies.list_strategies", anonymous, 200)
    sma = next(t for t in catalogue.templates if t.key == "sma_crossover")
    assert {p.name for p in sma.params} >= {"fast", "slow"}
    strategy = m.StrategyIn(
        template="sma_crossover", params=m.StrategyInParams.from_dict({"fast": 3, "slow": 8})
    )
    bot = api.call(
        "bots.create_bot",
        me,
        201,
        body=m.BotIn(
            name="gen", symbol="BTC-USD", timeframe=m.BotInTimeframe.H1, strategy=strategy
        ),
    )
    assert isinstance(bot, m.BotOut) and bot.status == m.BotOutStatus.DRAFT
    assert bot.schedule is None and bot.risk.direction.value == "long_only"
    detail = api.call("bots.get_bot", me, 200, bot.id)
    assert detail.last_error is None
    assert [b.id for b in api.call("bots.list_bots", me, 200).items] == [bot.id]

    # A backtest of it, through the real queue.
    queued = api.call(
        "backtests.create_backtest",
        me,
        202,
        body=m.BacktestIn(bot_id=bot.id, start=now_hour - 5 * DAY, end=now_hour),
    )
    assert queued.status == m.BacktestOutStatus.QUEUED and queued.metrics is None
    assert build_worker(app, (BACKTESTS,), simple=True).work(burst=True) is True
    done = api.call("backtests.get_backtest", me, 200, queued.id)
    assert done.status == m.BacktestOutStatus.SUCCEEDED, done.error
    assert isinstance(done.metrics, m.MetricsOut) and done.spec.start == now_hour - 5 * DAY
    as_json = raw_json(me, f"/api/v1/backtests/{queued.id}")
    assert done.metrics.trades == as_json["metrics"]["trades"] > 0
    assert done.metrics.sharpe == as_json["metrics"]["sharpe"]
    trades = api.call("backtests.list_backtest_trades", me, 200, queued.id, page_size=100)
    assert trades.total == len(trades.items) == done.metrics.trades
    assert all(t.exit_time > t.entry_time for t in trades.items)
    equity = api.call("backtests.get_backtest_equity", me, 200, queued.id, limit=50)
    assert equity.total == 5 * 24 and len(equity.rows) == 50 and equity.next_cursor is not None
    assert [row[0] for row in equity.rows] == list(
        range(now_hour - 5 * DAY, now_hour - 70 * HOUR, HOUR)
    )

    # Live: start it, then tick it as the dispatcher would.
    started = api.call("bots.start_bot", me, 200, bot.id)
    assert isinstance(started.run, m.BotRunOut) and started.run.paused_at is None
    # Test set-up: the run began two days ago, so that stored candles lie after its start.
    db.execute(
        text("UPDATE bot_runs SET started_at = :t WHERE id = :i"),
        {"t": datetime.fromtimestamp((now_hour - 2 * DAY) / 1000, UTC), "i": started.run.id},
    )
    db.commit()
    ticked = tick_bots([str(started.run.id)], now_hour - HOUR, fresh_bars=10**6)
    assert ticked["ticked"] == [str(started.run.id)]
    curve = api.call("bots.get_bot_equity", me, 200, bot.id, points=20)
    assert curve.total >= 40 and len(curve.rows) == 20
    logs = api.call("bots.list_bot_logs", me, 200, bot.id)
    assert "run_started" in {entry.event for entry in logs.rows}
    assert all(isinstance(entry.level, m.BotLogOutLevel) for entry in logs.rows)
    performance = api.call(
        "bots.get_bot_performance", me, 200, bot.id, period=m.GetBotPerformancePeriod.D7
    )
    assert (
        isinstance(performance.metrics, m.LiveMetricsOut) and performance.run_id == started.run.id
    )
    assert performance.metrics.as_of_ts == curve.rows[-1][0]
    assert performance.period == m.BotPerformanceOutPeriod.D7
    days = api.call("bots.get_bot_equity", me, 200, bot.id, resolution=m.GetBotEquityResolution.DAY)
    assert days.resolution == m.BotEquityOutResolution.DAY
    assert [row[1] for row in days.rows][-1] == curve.rows[-1][1]
    assert (
        isinstance(days.days[0], m.DailyEquityOut) and sum(d.bars for d in days.days) == curve.total
    )
    bot_trades = api.call("bots.list_bot_trades", me, 200, bot.id)
    assert bot_trades.total == performance.metrics.trades
    stopped = api.call("bots.stop_bot", me, 200, bot.id)
    assert stopped.status == m.BotWithRunOutStatus.STOPPED and stopped.run.stopped_at is not None

    # Sessions: a second login, revoked from the first; then log out.
    other = api.call("auth.login", anonymous, 200, body=m.LoginIn(login=name, password=PASSWORD))
    sessions = api.call("auth.list_sessions", me, 200)
    assert {s.id for s in sessions} == {tokens.session.id, other.session.id}
    assert [s.current for s in sessions if s.id == tokens.session.id] == [True]
    api.call("auth.revoke_session", me, 204, other.session.id)
    assert [s.id for s in api.call("auth.list_sessions", me, 200)] == [tokens.session.id]

    # Activity: mine (typed, newest first), and the admin's audit trail of me.
    mine = api.call("me.list_my_activity", me, 200, verb="bot.", limit=2)
    assert [row.verb for row in mine.rows] == ["bot.stopped", "bot.started"]
    assert mine.rows[0].actor.username == name and mine.next_cursor is not None
    older = api.call("me.list_my_activity", me, 200, verb="bot.", cursor=mine.next_cursor)
    assert [row.verb for row in older.rows] == ["bot.created"] and older.next_cursor is None
    admin = make_user(roles=("admin", "user"))
    root = api.call(
        "auth.login", anonymous, 200, body=m.LoginIn(login=admin.username, password=PASSWORD)
    )
    audit = api.call("admin.list_audit_trail", api.client(root.access_token), 200, user=name)
    assert {"auth.registered", "auth.login", "session.revoked"} <= {r.verb for r in audit.rows}
    api.call("auth.logout", me, 204)
    refused = importlib.import_module(f"{PACKAGE}.api.me.get_me").sync_detailed(client=me)
    assert refused.status_code == 401


def test_webhooks_through_the_generated_client(
    api: Api, make_user: Callable[..., Any], login: Callable[..., Any]
) -> None:
    m = api.models
    user = make_user()
    me = api.client(login(user.username)["access_token"])
    created = api.call(
        "me.create_webhook",
        me,
        201,
        body=m.WebhookIn(
            url="https://93.184.216.34/hooks",
            events=[m.WebhookInEventsItem.BOT_STARTED, m.WebhookInEventsItem.WEBHOOK_DISABLED],
        ),
    )
    assert isinstance(created, m.WebhookCreatedOut) and created.secret.startswith("whsec_")
    assert created.events == ["bot.started", "webhook.disabled"]
    hook_id = created.id
    listed = api.call("me.list_webhooks", me, 200)
    assert [hook.id for hook in listed.items] == [hook_id]
    assert api.call("me.get_webhook", me, 200, hook_id).url == "https://93.184.216.34/hooks"
    paused = api.call("me.update_webhook", me, 200, hook_id, body=m.WebhookPatch(is_active=False))
    assert paused.is_active is False and paused.disabled_at is not None
    ping = api.call("me.ping_webhook", me, 202, hook_id)
    assert isinstance(ping, m.WebhookPingOut) and ping.event == "ping"
    page = api.call("me.list_webhook_deliveries", me, 200, hook_id)
    assert page.rows == [] and page.next_cursor is None
    assert api.call("me.delete_webhook", me, 204, hook_id) is None


def test_profiles_and_settings_through_the_generated_client(
    api: Api, make_user: Callable[..., Any], login: Callable[..., dict[str, Any]]
) -> None:
    m = api.models
    user = make_user()
    me = api.client(login(user.username)["access_token"])
    updated = api.call(
        "me.update_me",
        me,
        200,
        body=m.ProfilePatch(display_name="Gen", bio="Typed.", timezone="UTC", locale="en-us"),
    )
    assert isinstance(updated, m.UserOut)
    assert (updated.timezone, updated.locale, updated.avatar_url) == ("UTC", "en-US", None)
    profile = api.call("users.get_user_profile", api.client(), 200, user.username.upper())
    assert isinstance(profile, m.PublicProfileOut) and profile.display_name == "Gen"
    assert profile.public_bots == [] and profile.counts.followers == 0
    assert not hasattr(profile, "email") and not hasattr(profile, "timezone")

    settings = api.call("me.get_settings", me, 200)
    assert isinstance(settings, m.AccountSettingsOut)
    assert isinstance(settings.notifications.backtest_finished, m.ChannelPrefsOut)
    assert settings.notifications.account_new_login.email is True
    assert settings.trading_defaults.initial_capital == 10_000.0
    patched = api.call(
        "me.update_settings",
        me,
        200,
        body=m.AccountSettingsPatch(
            email_digest=m.AccountSettingsPatchEmailDigest.DAILY,
            trading_defaults=m.TradingDefaultsPatch(fee=0.002),
            notifications=m.NotificationPrefsPatch(bot_trade=m.ChannelPrefsPatch(in_app=True)),
        ),
    )
    assert patched.email_digest.value == "daily" and patched.trading_defaults.fee == 0.002
    assert patched.notifications.bot_trade.in_app is True
    assert patched.trading_defaults.slippage_bps == 5.0
    whole = m.AccountSettingsIn.from_dict({**patched.to_dict(), "profile_visibility": "private"})
    replaced = api.call("me.replace_settings", me, 200, body=whole)
    assert replaced.profile_visibility.value == "private"
    assert replaced.to_dict() == {**patched.to_dict(), "profile_visibility": "private"}

    accepted = api.call(
        "me.request_email_change",
        me,
        202,
        body=m.EmailChangeIn(new_email="gen.moved@example.org", password=PASSWORD),
    )
    assert "gen.moved@example.org" in accepted.message
    confirm = importlib.import_module(f"{PACKAGE}.api.me.confirm_email_change")
    refused = confirm.sync_detailed(client=api.client(), body=m.EmailConfirmIn(token="nope"))
    assert refused.status_code == 400  # an error body (its `errors` is left out)


def test_reconciliation_through_the_generated_client(
    api: Api, app: Flask, db: Any, make_user: Callable[..., Any], login: Callable[..., Any]
) -> None:
    m = api.models
    now_hour = int(time.time() * 1000) // HOUR * HOUR
    load_btc_history(now_hour - 4 * DAY, now_hour)
    user = make_user()
    me = api.client(login(user.username)["access_token"])
    strategy = m.StrategyIn(
        template="sma_crossover", params=m.StrategyInParams.from_dict({"fast": 3, "slow": 8})
    )
    body = m.BotIn(name="recon", symbol="BTC-USD", timeframe=m.BotInTimeframe.H1, strategy=strategy)
    bot = api.call("bots.create_bot", me, 201, body=body)
    run = api.call("bots.start_bot", me, 200, bot.id).run
    # Test set-up: the run began two days ago, so that stored candles lie after its start.
    db.execute(
        text("UPDATE bot_runs SET started_at = :t WHERE id = :i"),
        {"t": datetime.fromtimestamp((now_hour - 2 * DAY) / 1000, UTC), "i": run.id},
    )
    db.commit()
    assert tick_bots([str(run.id)], now_hour - HOUR, fresh_bars=10**6)["ticked"] == [str(run.id)]
    period = m.GetBotReconciliationPeriod.DAYS_7
    pending = api.call("performance.get_bot_reconciliation", me, 202, bot.id, period=period)
    assert isinstance(pending, m.ReconciliationPendingOut) and pending.status.value == "pending"
    assert pending.location == f"/api/v1/bots/{bot.id}/reconciliation?period=7d"
    assert build_worker(app, (DEFAULT,), simple=True).work(burst=True) is True
    done = api.call("performance.get_bot_reconciliation", me, 200, bot.id, period=period)
    assert isinstance(done, m.ReconciliationOut) and done.status.value == "done"
    assert isinstance(done.report, m.ReconciliationReportOut) and done.report.differences == []
    assert (done.missing, done.extra, done.diverged) == (0, 0, False)
    assert done.report.equity.bars_compared == done.report.replay.bars


def test_a_bot_card_through_the_generated_client(
    api: Api,
    db: Any,
    ticked_run: Any,
    live_owner: Any,
    make_user: Callable[..., Any],
    login: Callable[..., dict[str, Any]],
) -> None:
    m = api.models
    bot = db.get(Bot, ticked_run.bot_id)
    bot.visibility = "public"
    db.add(
        RunPerformance(
            run_id=ticked_run.id,
            period="all",
            metrics_version="1",
            as_of_ts=ticked_run.last_candle_ts,
            start_ts=ticked_run.last_candle_ts - 5 * DAY,
            days_tracked=5.0,
            total_return=0.02,
            max_drawdown=0.01,
            trades=4,
            sharpe=1.1,
            psr=0.7,
        )
    )
    db.commit()
    other = api.client(login(make_user().username)["access_token"])
    card = api.call("bots.get_bot", other, 200, bot.id)
    assert isinstance(card, m.BotDetailOut) and card.view == m.BotDetailOutView.CARD
    assert card.strategy is None and card.risk is None and card.fee is None
    assert card.strategy_family == "sma_crossover"
    [metrics] = card.metrics
    assert isinstance(metrics, m.CardMetricsOut) and metrics.period == m.CardMetricsOutPeriod.ALL
    assert (metrics.trades, metrics.total_return) == (4, 0.02)
    assert isinstance(card.owner, m.CardOwnerOut) and card.owner.username == live_owner.username
    assert card.track.days_tracked == 5.0 and card.reconciliation is None
    mine = api.call(
        "bots.get_bot", api.client(login(live_owner.username)["access_token"]), 200, bot.id
    )
    assert mine.view == m.BotDetailOutView.OWNER and mine.strategy.template == "sma_crossover"


def test_leaderboards_through_the_generated_client(
    api: Api, db: Any, make_user: Callable[..., Any], login: Callable[..., dict[str, Any]]
) -> None:
    m = api.models
    world.instruments()
    owner = make_user()
    ranked = world.ranked(world.bot(owner), sharpe=1.5)
    db.commit()
    world.run_recompute()
    me = api.client(login(owner.username)["access_token"])
    board = api.call("leaderboards.get_leaderboard", me, 200)
    assert isinstance(board, m.BoardOut) and board.generation_id is not None
    (entry,) = board.entries
    assert isinstance(entry, m.EntryOut) and entry.bot.id == ranked.id
    assert isinstance(entry.components, m.ComponentsOut) and entry.components.sharpe == 1.5
    assert board.mine is not None and board.mine.rank == 1
    preview = api.call("leaderboards.get_leaderboard_preview", api.client(), 200)
    assert isinstance(preview, m.PreviewOut) and len(preview.boards) == 16
    status = api.call("bots.get_bot_leaderboard_status", me, 200, ranked.id)
    assert isinstance(status, m.LeaderboardStatusOut) and status.ranked is True
    assert isinstance(status.placings[0], m.PlacingOut)


def test_the_community_through_the_generated_client(
    api: Api, db: Any, make_user: Callable[..., Any], login: Callable[..., dict[str, Any]]
) -> None:
    """Every community operation, called through the generated client, answers typed."""
    m = api.models
    world.instruments()
    alice, bob, carol = make_user(), make_user(), make_user()
    moderator = make_user(roles=("moderator", "user"))
    source = world.ranked(world.bot(alice), sharpe=1.0)
    other = world.bot(alice)
    db.commit()
    as_alice = api.client(login(alice.username)["access_token"])
    as_bob = api.client(login(bob.username)["access_token"])
    as_mod = api.client(login(moderator.username)["access_token"])
    c = "community."

    link = api.call(
        c + "create_share_link",
        as_alice,
        201,
        source.id,
        body=m.ShareLinkIn(scope=m.ShareLinkInScope.VIEW),
    )
    assert len(link.token) >= 43  # 256 bits, URL-safe
    assert api.call(c + "get_shared_bot", api.client(), 200, link.token).configuration is not None
    assert api.call(c + "list_share_links", as_alice, 200, source.id).items[0].id == link.id
    fork = api.call(c + "fork_shared_bot", as_bob, 201, link.token, body=m.ForkIn())
    assert fork.id != source.id
    api.call(c + "fork_bot", as_bob, 201, source.id, body=m.ForkIn(name="my copy"))
    api.call(c + "revoke_share_link", as_alice, 204, source.id, link.id)

    assert api.call(c + "star_bot", as_bob, 200, source.id).stars == 1
    assert api.call(c + "list_my_stars", as_bob, 200).items[0].bot.id == source.id
    assert api.call(c + "unstar_bot", as_bob, 200, source.id).stars == 0

    comment = api.call(c + "create_comment", as_bob, 201, source.id, body=m.CommentIn(body="hi"))
    reply = api.call(
        c + "create_comment",
        as_alice,
        201,
        source.id,
        body=m.CommentIn(body="thanks", parent_id=comment.id),
    )
    assert api.call(c + "list_bot_comments", as_bob, 200, source.id).items[0].id == comment.id
    assert api.call(c + "list_comment_replies", as_bob, 200, comment.id).items[0].id == reply.id
    edited = api.call(
        c + "update_comment", as_bob, 200, comment.id, body=m.CommentPatch(body="hi there")
    )
    assert edited.body == "hi there"

    api.call(c + "follow_user", as_bob, 200, alice.username)
    assert api.call(c + "list_user_followers", as_bob, 200, alice.username).items
    assert api.call(c + "list_my_following", as_bob, 200).items[0].username == alice.username
    api.call(c + "list_my_followers", as_alice, 200)
    api.call(c + "list_user_following", as_alice, 200, bob.username)
    api.call(c + "get_feed", as_bob, 200)

    report = api.call(
        c + "create_report",
        as_bob,
        201,
        body=m.ReportIn(
            target_type=m.ReportInTargetType.BOT,
            target_id=str(other.id),
            reason=m.ReportInReason.SPAM,
        ),
    )
    queue = api.call(c + "list_moderation_reports", as_mod, 200)
    assert [item.id for item in queue.items] == [report.id]
    api.call(c + "resolve_report", as_mod, 200, report.id, body=m.ReportResolveIn(note="ok"))
    api.call(c + "hide_bot", as_mod, 200, other.id, body=m.HideIn(reason="spam"))
    api.call(c + "restore_bot", as_mod, 200, other.id, body=m.RestoreIn())
    api.call(c + "hide_comment", as_mod, 200, reply.id, body=m.HideIn(reason="spam"))
    api.call(c + "restore_comment", as_mod, 200, reply.id, body=m.RestoreIn())
    second = api.call(
        c + "create_report",
        as_bob,
        201,
        body=m.ReportIn(
            target_type=m.ReportInTargetType.USER,
            target_id=alice.username,
            reason=m.ReportInReason.OTHER,
        ),
    )
    api.call(c + "dismiss_report", as_mod, 200, second.id, body=m.ReportDismissIn(note="fine"))

    mirror = api.call(c + "mirror_bot", as_bob, 201, source.id, body=m.MirrorIn())
    assert mirror.source_bot_id == source.id
    api.call(c + "block_user", as_bob, 200, carol.username)
    assert api.call(c + "list_my_blocks", as_bob, 200).items[0].username == carol.username
    api.call(c + "unblock_user", as_bob, 204, carol.username)
    api.call(c + "unfollow_user", as_bob, 204, alice.username)
    api.call(c + "delete_comment", as_alice, 204, reply.id)

    document = api.app.test_client().get("/api/openapi.json").json
    every = {
        c + re.sub(r"(?<!^)(?=[A-Z])", "_", op["operationId"]).lower()
        for ops in document["paths"].values()
        for op in ops.values()
        if isinstance(op, dict) and "community" in op.get("tags", [])
    }
    assert api.called >= every, sorted(every - api.called)
