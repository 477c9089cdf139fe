"""Operator commands: ``flask seed`` and ``flask users create``."""

from __future__ import annotations

import time
from pathlib import Path

import click
from flask import Flask
from flask.cli import AppGroup
from redis.exceptions import RedisError

from api.extensions import redis_client, settings
from models.db import session as db
from models.errors import DomainError
from models.identity.rbac import ROLES
from models.identity.users import create_user
from models.market.cache import CandleCache
from models.market.data import CsvRejected, import_csv
from models.market.instruments import forget_instrument_refs
from models.market.tables import TIMEFRAME_MS
from models.people.webhooks import new_secret
from models.seed import seed_bots, seed_market, seed_people, seed_world
from models.seed_community import seed_community
from models.seed_tracks import seed_track_records
from workers.demo import build_track_records
from workers.enqueue import enqueue_backtest

users_cli = AppGroup("users", help="Manage accounts.")
market_cli = AppGroup("market", help="Manage market data.")


@click.command("seed")
@click.option(
    "--days",
    type=click.IntRange(0, 3650),
    default=None,
    help="Days of 1m history for instruments without any (default: SEED_HISTORY_DAYS).",
)
@click.option(
    "--webhook-sink",
    default=None,
    help="URL of the development webhook receiver: alice gets a webhook there.",
)
@click.option(
    "--webhook-secret-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("var/webhook_secret"),
    show_default=True,
    help="The receiver's secret (made when missing); the seeded webhook signs with it.",
)
def seed_command(days: int | None, webhook_sink: str | None, webhook_secret_file: Path) -> None:
    """Build the development world (idempotent: a second run changes nothing)."""
    with_accounts = not settings().is_production
    report = seed_world(with_accounts=with_accounts)
    db.commit()
    click.echo(f"seed: {report.rows_changed} row(s) changed")
    started = time.perf_counter()
    loaded = seed_market(
        int(time.time() * 1000), settings().seed_history_days if days is None else days
    )
    db.commit()
    if loaded:
        click.echo(
            f"market: loaded {sum(loaded.values())} 1m candles for {len(loaded)} instrument(s) "
            f"in {time.perf_counter() - started:.1f}s"
        )
    else:
        click.echo("market: every instrument already has history (the feed keeps it current)")
    if not with_accounts:
        click.echo("production: roles synced; create accounts with `flask users create`.")
        return
    _seed_demo_people(webhook_sink, webhook_secret_file)
    _seed_demo_bots()
    _seed_track_records()
    _seed_community()
    click.echo("development accounts (login with username or email):")
    for acct in (*report.created, *report.existing):
        state = "created" if acct in report.created else "exists "
        click.echo(
            f"  {state} {acct.username:<10} {acct.email:<24} "
            f"password={acct.password:<24} roles={','.join(acct.roles)}"
        )


def _seed_demo_people(webhook_sink: str | None, secret_file: Path) -> None:
    """Profiles, settings and activity for the demo users; alice's webhook to the receiver."""
    secret = None
    if webhook_sink:
        if not secret_file.exists():
            secret_file.parent.mkdir(parents=True, exist_ok=True)
            secret_file.write_text(new_secret())
            secret_file.chmod(0o600)
        secret = secret_file.read_text().strip()
    changed = seed_people(webhook_sink, secret)
    db.commit()
    if webhook_sink:
        click.echo(f"people: {changed} change(s); alice's webhook posts to {webhook_sink}")
    else:
        click.echo(f"people: {changed} change(s)")


def _seed_demo_bots() -> None:
    """Demo bots and their first backtests (queued here; the worker runs them)."""
    seeded = seed_bots(int(time.time() * 1000))
    db.commit()
    queued = seeded.queued
    try:
        for backtest_id in queued:
            enqueue_backtest(redis_client(), str(backtest_id), settings().backtest_timeout)
    except RedisError as exc:
        raise click.ClickException(
            f"Redis is unreachable; demo backtests not queued ({exc})"
        ) from exc
    if queued:
        click.echo(f"bots: made {len(queued)} demo bot(s); their backtests run on the worker")
    if seeded.started:
        click.echo(
            f"bots: started {len(seeded.started)} live demo bot(s) on 1m candles "
            f"({', '.join(seeded.started)})"
        )
    else:
        click.echo("bots: the demo bots exist already")


def _seed_track_records() -> None:
    """Public demo bots with live track records, replayed here; then snapshots and boards."""
    started = time.perf_counter()
    seeded = seed_track_records(int(time.time() * 1000))
    db.commit()
    for symbol, count in seeded.backfilled.items():
        click.echo(f"market: loaded {count} older 1m candles for {symbol}'s long track records")
    if not seeded.made:
        click.echo("tracks: the demo track records exist already (or there is no history)")
        return
    done = build_track_records(seeded.catch_up)
    click.echo(
        f"tracks: made {len(seeded.made)} public demo bot(s), replayed {done['ticked']} live "
        f"run(s) over their history in {time.perf_counter() - started:.1f}s"
    )
    for dotted in done["ran"]:
        click.echo(f"tracks: ran {dotted}")
    for dotted in done["skipped"]:
        click.echo(f"tracks: {dotted} is not available; the periodic job will fill in")


def _seed_community() -> None:
    """Follows, stars, comments and forks among the demo users (models/seed_community.py)."""
    done = seed_community()
    db.commit()
    click.echo(
        f"community: {done.follows} follow(s), {done.stars} star(s), {done.comments} "
        f"comment(s), {done.forks} fork(s), {done.published} public bot(s) announced"
    )


@users_cli.command("create")
@click.argument("email")
@click.argument("username")
@click.option("--password", required=True, help="At least 10 characters.")
@click.option(
    "--role", "roles", multiple=True, type=click.Choice(sorted(ROLES)), help="Repeatable."
)
def create_user_command(email: str, username: str, password: str, roles: tuple[str, ...]) -> None:
    """Create an account (role `user` unless --role is given)."""
    if not 10 <= len(password) <= 128:
        raise click.BadParameter("use 10-128 characters", param_hint="--password")
    try:
        user = create_user(email, username, password, roles or ("user",))
        db.commit()
    except DomainError as exc:
        db.rollback()
        raise click.ClickException(exc.message) from exc
    click.echo(
        f"created {user.username} <{user.email}> id={user.id} roles={','.join(user.role_names)}"
    )


@market_cli.command("import-csv")
@click.argument("file", type=click.File("r", encoding="utf-8-sig"))
@click.option("--symbol", required=True, help="BASE-QUOTE, e.g. AAPL-USD (created if new).")
@click.option("--timeframe", required=True, type=click.Choice(list(TIMEFRAME_MS)))
@click.option(
    "--kind",
    type=click.Choice(["crypto", "fx", "equity"]),
    default="equity",
    show_default=True,
    help="For a new instrument.",
)
def import_csv_command(file: click.File, symbol: str, timeframe: str, kind: str) -> None:
    """Import candles from a CSV export (exchange/ccxt kline rows or a Yahoo-style file)."""
    try:
        report = import_csv(file, symbol, timeframe, kind)  # type: ignore[arg-type]
        db.commit()
    except CsvRejected as exc:
        db.rollback()
        raise click.ClickException("\n".join([exc.message, *exc.errors])) from exc
    except DomainError as exc:
        db.rollback()
        raise click.ClickException(exc.message) from exc
    forget_instrument_refs()
    cache = CandleCache(redis_client())
    try:
        for tf in report.timeframes:
            cache.invalidate(report.symbol, tf, TIMEFRAME_MS[tf], report.start_ms, report.end_ms)
    except RedisError:
        click.echo("warning: Redis is unreachable; cached candles expire within a day", err=True)
    state = "new instrument" if report.created_instrument else "existing instrument"
    click.echo(
        f"imported {report.rows} {timeframe} candles ({report.layout} layout, "
        f"{report.skipped} empty row(s) skipped) into {report.symbol} ({state})"
    )


def register(app: Flask) -> None:
    """Attach the commands to ``app.cli``."""
    app.cli.add_command(seed_command)
    app.cli.add_command(users_cli)
    app.cli.add_command(market_cli)
