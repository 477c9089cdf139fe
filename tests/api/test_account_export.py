"""Data exports end to end: API -> RQ ``default`` -> the document in Postgres -> download."""

from __future__ import annotations

import gzip
import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from redis import Redis
from rq import Queue
from sqlalchemy import select

from models.bots.runs import BotRun
from models.bots.ticks import BotEquity, BotTrade
from models.people.notifications import notify
from models.people.tables import DataExport, Notification
from tests.api.account_data import fill_account
from tests.helpers import bearer
from workers import exports as export_jobs
from workers.enqueue import enqueue_export
from workers.main import build_worker
from workers.queues import DEFAULT


def drain(app: Flask) -> None:
    assert build_worker(app, (DEFAULT,), simple=True).work(burst=True) is True


def ask(client: FlaskClient, headers: dict[str, str]) -> Any:
    return client.post("/api/v1/me/export", headers=headers)


def download(client: FlaskClient, url: str, headers: dict[str, str], gzip_ok: bool = False) -> Any:
    encoding = {"Accept-Encoding": "gzip"} if gzip_ok else {}
    return client.get(url, headers={**headers, **encoding})


def test_an_export_holds_everything_i_own_and_nothing_secret_or_anyone_elses(
    app: Flask,
    client: FlaskClient,
    db: Any,
    redis: Redis,
    live_owner: Any,
    ticked_run: BotRun,
    make_user: Callable[..., Any],
) -> None:
    owned = fill_account(app, client, db, live_owner, live_owner.headers, ticked_run)
    other = make_user()
    notify(other.id, "bot.error", {"bot_id": "not-yours"})
    db.commit()
    # Mine so far: the filler's, and what the bot and backtest above told me (bot.started...).
    mine = db.scalars(
        select(Notification.id).where(Notification.user_id == live_owner.id).order_by("id")
    ).all()
    assert owned.notification_id in mine

    response = ask(client, live_owner.headers)
    assert response.status_code == 202, response.json
    queued = response.json
    assert queued["status"] == "queued" and queued["download_url"] is None
    assert response.headers["Location"] == f"/api/v1/me/exports/{queued['id']}"
    job = Queue(DEFAULT, connection=redis).fetch_job(f"export-{queued['id']}")
    assert job is not None and job.args == (queued["id"],)
    # One export at a time.
    again = ask(client, live_owner.headers)
    assert again.status_code == 409 and again.json["code"] == 409

    drain(app)
    ready = client.get(response.headers["Location"], headers=live_owner.headers).json
    assert ready["status"] == "ready", ready
    ready_at = datetime.fromisoformat(ready["ready_at"])
    assert datetime.fromisoformat(ready["expires_at"]) == ready_at + timedelta(hours=24)
    assert ready["download_url"] == f"/api/v1/me/exports/{queued['id']}/download"
    assert ready["size_bytes"] > 0

    plain = download(client, ready["download_url"], live_owner.headers)
    assert plain.status_code == 200, plain.json
    assert plain.mimetype == "application/json"
    assert plain.headers["Content-Disposition"].startswith('attachment; filename="botyard-export-')
    assert "Content-Encoding" not in plain.headers
    packed = download(client, ready["download_url"], live_owner.headers, gzip_ok=True)
    assert packed.headers["Content-Encoding"] == "gzip"
    assert len(packed.data) == ready["size_bytes"]
    assert gzip.decompress(packed.data) == plain.data
    text = plain.data.decode()
    doc = json.loads(text)

    assert doc["format"] == "botyard-export/1"
    profile = doc["profile"]
    assert profile["id"] == str(live_owner.id) and profile["email"] == owned.email
    assert profile["roles"] == ["user"] and "password_hash" not in profile
    assert doc["settings"]["email_digest"] == "daily"  # my change, over the defaults
    assert doc["settings"]["notifications"]["bot.trade"]["in_app"] is False  # a default
    assert [b["id"] for b in doc["bots"]] == [owned.bot_id]
    assert doc["bots"][0]["symbol"] == "BTC-USD" and doc["bots"][0]["strategy"]["template"]

    [run] = doc["runs"]
    assert run["id"] == owned.run_id and run["bot_id"] == owned.bot_id
    trades = db.scalars(select(BotTrade).where(BotTrade.run_id == ticked_run.id)).all()
    assert len(run["trades"]) == len(trades) >= 3
    assert {t["client_order_id"] for t in run["trades"]} == {t.client_order_id for t in trades}
    equity = db.execute(
        select(BotEquity.ts, BotEquity.equity)
        .where(BotEquity.run_id == ticked_run.id)
        .order_by(BotEquity.ts)
    ).all()
    assert run["equity"] == [[ts, value] for ts, value in equity]
    assert any(entry["event"] == "run_started" for entry in run["logs"])

    [backtest] = doc["backtests"]
    assert backtest["id"] == owned.backtest_id and backtest["status"] == "succeeded"
    assert len(backtest["trades"]) == backtest["metrics"]["trades"] > 0
    assert [t["seq"] for t in backtest["trades"]] == list(range(1, len(backtest["trades"]) + 1))

    assert sorted(n["id"] for n in doc["notifications"]) == mine
    [activity] = [a for a in doc["activity"] if a["verb"] == "bot.created"]
    assert activity["ip"] == "203.0.113.7" and activity["user_agent"] == "pytest-agent/1.0"
    assert any(a["verb"] == "account.export_requested" for a in doc["activity"])
    [hook] = doc["webhooks"]
    assert hook["id"] == owned.webhook_id and "secret" not in hook
    assert doc["sessions"] and all("refresh_jti" not in s for s in doc["sessions"])

    for secret in owned.secrets:
        assert secret not in text
    assert "$argon2" not in text and "refresh_jti" not in text
    assert str(other.id) not in text and other.email not in text and "not-yours" not in text

    # The owner is told, once; running the job again changes nothing.
    told = db.scalars(
        select(Notification).where(
            Notification.user_id == live_owner.id, Notification.event == "account.export_ready"
        )
    ).all()
    assert [n.data["export_id"] for n in told] == [queued["id"]]
    assert told[0].data["expires_at"] == ready["expires_at"].replace("Z", "+00:00")
    enqueue_export(redis, queued["id"])
    drain(app)
    assert client.get(response.headers["Location"], headers=live_owner.headers).json == ready
    assert download(client, ready["download_url"], live_owner.headers).data == plain.data
    assert (
        db.scalar(
            select(Notification.id)
            .where(
                Notification.user_id == live_owner.id, Notification.event == "account.export_ready"
            )
            .offset(1)
        )
        is None
    )


def test_exports_are_owner_only(
    app: Flask, client: FlaskClient, owner: dict[str, str], stranger: dict[str, str]
) -> None:
    created = ask(client, owner)
    assert created.status_code == 202
    location = created.headers["Location"]
    early = download(client, f"{location}/download", owner)
    assert early.status_code == 409 and "queued" in early.json["message"]
    drain(app)
    for url in (location, f"{location}/download"):
        refused = client.get(url, headers=stranger)
        assert refused.status_code == 404 and refused.json["code"] == 404
        missing = client.get(url.replace(created.json["id"], str(uuid.uuid4())), headers=owner)
        assert missing.status_code == 404
    assert client.get("/api/v1/me/exports", headers=stranger).json["items"] == []
    assert download(client, f"{location}/download", owner).status_code == 200
    assert client.get(f"{location}/download").status_code == 401


def _built_at(db: Any, client: FlaskClient, headers: dict[str, str], at: datetime) -> str:
    """Ask for an export and build it as the worker would, at the controlled time ``at``."""
    export_id = ask(client, headers).json["id"]
    assert export_jobs.build_export(export_id, now=at.isoformat()) == "ready"
    assert export_jobs.build_export(export_id, now=at.isoformat()) == "skipped"
    return str(export_id)


def test_a_download_ends_at_expiry_and_the_purge_drops_the_payload(
    client: FlaskClient, db: Any, owner: dict[str, str]
) -> None:
    now = datetime.now(UTC)
    old = _built_at(db, client, owner, now - timedelta(hours=25))  # expired an hour ago
    fresh = _built_at(db, client, owner, now)
    gone = client.get(f"/api/v1/me/exports/{old}/download", headers=owner)
    assert gone.status_code == 410 and gone.json["code"] == 410, gone.json
    assert client.get(f"/api/v1/me/exports/{old}", headers=owner).json["download_url"] is None
    assert client.get(f"/api/v1/me/exports/{fresh}/download", headers=owner).status_code == 200

    assert export_jobs.purge_exports(now.isoformat()) == {"expired": 1, "failed": 0, "deleted": 0}
    assert export_jobs.purge_exports(now.isoformat()) == {"expired": 0, "failed": 0, "deleted": 0}
    row = db.get(DataExport, uuid.UUID(old))
    db.refresh(row)
    assert row.status == "expired"
    assert db.scalar(select(DataExport.payload).where(DataExport.id == row.id)) is None
    expired = client.get(f"/api/v1/me/exports/{old}", headers=owner).json
    assert expired["status"] == "expired" and expired["download_url"] is None
    assert client.get(f"/api/v1/me/exports/{old}/download", headers=owner).status_code == 410

    # A day later the fresh one goes too.
    later = (now + timedelta(hours=24, seconds=1)).isoformat()
    assert export_jobs.purge_exports(later)["expired"] == 1
    assert client.get(f"/api/v1/me/exports/{fresh}/download", headers=owner).status_code == 410


def test_a_stuck_export_fails_so_another_can_be_asked_for(
    client: FlaskClient, db: Any, owner: dict[str, str]
) -> None:
    stuck = ask(client, owner).json["id"]  # never built: its job was lost
    assert ask(client, owner).status_code == 409
    later = (datetime.now(UTC) + timedelta(hours=3)).isoformat()
    assert export_jobs.purge_exports(later)["failed"] == 1
    failed = client.get(f"/api/v1/me/exports/{stuck}", headers=owner).json
    assert failed["status"] == "failed" and failed["error"]
    assert download(client, f"/api/v1/me/exports/{stuck}/download", owner).status_code == 409
    assert export_jobs.build_export(stuck) == "skipped"  # a failed export is not rebuilt
    assert ask(client, owner).status_code == 202


def test_a_few_exports_a_day_and_the_list_pages_by_cursor(
    client: FlaskClient, db: Any, make_user: Callable[..., Any], login: Callable[..., Any]
) -> None:
    headers = bearer(login(make_user().username)["access_token"])
    made = []
    for _ in range(3):  # EXPORT_LIMIT_PER_DAY
        made.append(_built_at(db, client, headers, datetime.now(UTC)))
    refused = ask(client, headers)
    assert refused.status_code == 429 and "3 exports" in refused.json["message"]

    first = client.get("/api/v1/me/exports?limit=2", headers=headers).json
    assert [e["id"] for e in first["items"]] == made[::-1][:2]
    assert first["next_cursor"]
    rest = client.get(
        "/api/v1/me/exports",
        query_string={"limit": 2, "cursor": first["next_cursor"]},
        headers=headers,
    ).json
    assert [e["id"] for e in rest["items"]] == [made[0]] and rest["next_cursor"] is None
    bad = client.get("/api/v1/me/exports?cursor=nonsense", headers=headers)
    assert bad.status_code == 422 and bad.json["errors"]["query"]["cursor"]
    assert client.get("/api/v1/me/exports?limit=1000", headers=headers).status_code == 422
