"""``flask seed`` and ``flask users create``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask import Flask

from models.community.feed import feed_page
from models.identity.rbac import PERMISSIONS, ROLES
from models.identity.tables import User
from models.identity.users import find_by_login
from models.people.preferences import effective_settings
from models.people.tables import Activity, Webhook
from models.seed import DEV_ACCOUNTS
from models.seed_tracks import DEMO_TRACKS
from workers.main import build_worker
from workers.queues import BACKTESTS

SNAPSHOT_TABLES = (
    "users",
    "roles",
    "permissions",
    "user_roles",
    "role_permissions",
    "instruments",
    "bots",
    "bot_runs",
    "account_settings",
    "activities",
    "webhooks",
    "bot_equity",
    "bot_trades",
    "follows",
    "bot_stars",
    "comments",
)


def _snapshot(db: Any) -> dict[str, list[tuple[Any, ...]]]:
    return {
        table: sorted(tuple(row) for row in db.execute(sa.text(f"SELECT * FROM {table}")))  # noqa: S608
        for table in SNAPSHOT_TABLES
    }


def test_seed_builds_the_world_and_a_second_run_changes_nothing(app: Flask, db: Any) -> None:
    runner = app.test_cli_runner()
    first = runner.invoke(args=["seed"])
    assert first.exit_code == 0, first.output
    for acct in DEV_ACCOUNTS:
        assert acct.password in first.output  # development passwords are printed
        user = find_by_login(acct.username)
        assert user is not None and user.role_names == sorted(acct.roles)
    roles = dict(db.execute(sa.text("SELECT name, id FROM roles")).all())
    assert set(roles) == set(ROLES)
    assert {p for (p,) in db.execute(sa.text("SELECT name FROM permissions"))} == set(PERMISSIONS)
    admin = find_by_login("admin")
    assert admin is not None and admin.has_permission("users:manage")

    # Demo bots for the demo users, each with a queued backtest the worker then runs.
    assert "bots: made 6 demo bot(s)" in first.output
    assert "bots: started 2 live demo bot(s) on 1m candles" in first.output
    owners = db.execute(
        sa.text(
            "SELECT u.username, count(*) FROM bots b JOIN users u ON u.id = b.owner_id GROUP BY 1"
        )
    ).all()
    traders = ("carol", "dave", "erin", "frank", "grace", "heidi")
    # alice's fourth bot is her fork of carol's (the demo community below).
    assert dict(owners) == {"alice": 4, "bob": 3, **dict.fromkeys(traders, 4)}
    # One live 1m bot each, running on a fresh paper run, so the feed's candles tick them.
    live = db.execute(
        sa.text(
            "SELECT u.username, b.timeframe, b.status, r.status, r.last_candle_ts "
            "FROM bots b JOIN users u ON u.id = b.owner_id JOIN bot_runs r ON r.bot_id = b.id "
            "WHERE u.username IN ('alice', 'bob')"
        )
    ).all()
    assert sorted(tuple(row) for row in live) == [
        ("alice", "1m", "running", "running", None),
        ("bob", "1m", "running", "running", None),
    ]
    assert db.scalar(sa.text("SELECT count(*) FROM bots WHERE status = 'draft'")) == 5
    public = db.execute(sa.text("SELECT status FROM bots WHERE visibility = 'public'")).all()
    assert [status for (status,) in public] == ["running"] * (2 + len(DEMO_TRACKS))
    # The demo traders' track records: live runs replayed over the stored history
    # (tests/models/test_seed_tracks.py checks their spans and trades).
    assert f"tracks: made {len(DEMO_TRACKS)} public demo bot(s)" in first.output
    replayed = db.scalar(
        sa.text(
            "SELECT count(DISTINCT r.id) FROM bot_runs r JOIN bot_equity e ON e.run_id = r.id "
            "JOIN bots b ON b.id = r.bot_id WHERE b.timeframe <> '1m'"
        )
    )
    assert replayed == len(DEMO_TRACKS)
    assert build_worker(app, (BACKTESTS,), simple=True).work(burst=True) is True
    statuses = [s for (s,) in db.execute(sa.text("SELECT status FROM backtests"))]
    assert statuses == ["succeeded"] * 6
    assert db.scalar(sa.text("SELECT count(*) FROM backtest_equity")) > 0

    # The demo community: follows, stars, a thread of comments and a fork, announced in
    # the activities the feed reads, so alice's feed has her followed traders' news.
    assert (
        f"community: 10 follow(s), 7 star(s), 3 comment(s), 1 fork(s), {len(DEMO_TRACKS)} "
        "public bot(s) announced" in first.output
    )
    alice = find_by_login("alice")
    assert alice is not None
    feed = feed_page(alice.id, None, 50, top_n=10)
    kinds = {row.kind for row in feed}
    assert {"bot.published", "comment.created"} <= kinds, kinds
    assert {row.actor for row in feed} <= {"carol", "dave", "heidi"}
    fork = db.execute(
        sa.text(
            "SELECT f.status, s.name FROM bots f JOIN bots s ON s.id = f.forked_from_id "
            "JOIN users u ON u.id = f.owner_id WHERE u.username = 'alice'"
        )
    ).one()
    assert tuple(fork) == ("draft", "BTC trend rider (SMA 10/30)")

    before = _snapshot(db)
    second = runner.invoke(args=["seed"])
    assert second.exit_code == 0, second.output
    assert "seed: 0 row(s) changed" in second.output
    assert "the demo bots exist already" in second.output
    assert "the demo track records exist already" in second.output
    assert _snapshot(db) == before
    assert db.scalar(sa.text("SELECT count(*) FROM backtests")) == 6
    assert "bots: started" not in second.output
    assert "community: 0 follow(s), 0 star(s), 0 comment(s), 0 fork(s), 0 public" in second.output


def test_seed_gives_the_demo_people_profiles_settings_activity_and_a_webhook(
    app: Flask, db: Any, tmp_path: Path
) -> None:
    runner = app.test_cli_runner()
    secret_file = tmp_path / "secret"
    args = ["seed", "--days", "0", "--webhook-sink", "http://127.0.0.1:9099/"]
    first = runner.invoke(args=[*args, "--webhook-secret-file", str(secret_file)])
    assert first.exit_code == 0, first.output
    assert "alice's webhook posts to http://127.0.0.1:9099/" in first.output
    alice, bob = find_by_login("alice"), find_by_login("bob")
    assert alice is not None and bob is not None
    assert (alice.display_name, alice.timezone) == ("Alice Liddell", "Europe/London")
    assert effective_settings(bob.id)["email_digest"] == "daily"
    assert effective_settings(bob.id)["trading_defaults"]["initial_capital"] == 25_000.0
    verbs = db.scalars(sa.select(Activity.verb).where(Activity.actor_id == alice.id)).all()
    # Her three follows come from the demo community (models/seed_community.py); without
    # market history there are no track records, so nothing to fork.
    assert sorted(verbs) == [
        "auth.registered",
        "settings.changed",
        "user.followed",
        "user.followed",
        "user.followed",
    ]
    [hook] = db.scalars(sa.select(Webhook).where(Webhook.user_id == alice.id)).all()
    assert hook.url == "http://127.0.0.1:9099/"
    assert hook.secret == secret_file.read_text().strip()
    assert oct(secret_file.stat().st_mode & 0o777) == "0o600"

    before = _snapshot(db)
    second = runner.invoke(args=[*args, "--webhook-secret-file", str(secret_file)])
    assert "people: 0 change(s)" in second.output
    assert _snapshot(db) == before
    # A lost secret file: the webhook takes the new one, so the receiver can verify again.
    secret_file.unlink()
    third = runner.invoke(args=[*args, "--webhook-secret-file", str(secret_file)])
    assert "people: 1 change(s)" in third.output
    db.refresh(hook)
    assert hook.secret == secret_file.read_text().strip()


def test_users_create_command(app: Flask, db: Any) -> None:
    runner = app.test_cli_runner()
    result = runner.invoke(
        args=[
            "users",
            "create",
            "Ops@Example.com",
            "ops_person",
            "--password",
            "a-long-password",
            "--role",
            "moderator",
            "--role",
            "user",
        ]
    )
    assert result.exit_code == 0, result.output
    user = db.scalars(sa.select(User).where(User.username == "ops_person")).one()
    assert user.email == "Ops@example.com"  # shown as typed, domain lower-cased
    assert user.email_key == "ops@example.com"
    assert user.role_names == ["moderator", "user"]
    assert "a-long-password" not in result.output

    duplicate = runner.invoke(
        args=["users", "create", "ops@example.com", "other", "--password", "a-long-password"]
    )
    assert duplicate.exit_code != 0
    assert "already registered" in duplicate.output
    short = runner.invoke(
        args=["users", "create", "x@example.com", "xx_user", "--password", "short"]
    )
    assert short.exit_code != 0
    bad_role = runner.invoke(
        args=[
            "users",
            "create",
            "y@example.com",
            "yy_user",
            "--password",
            "a-long-password",
            "--role",
            "god",
        ]
    )
    assert bad_role.exit_code != 0
