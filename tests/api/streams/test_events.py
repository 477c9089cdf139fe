"""The user events stream (GET /api/v1/me/events) on the real `streams` process."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable

from redis import Redis

from tests.api.streams.helpers import (
    ROOT,
    Streams,
    _login,
    open_stream,
    read_event,
)
from tests.helpers import REDIS_URL
from tests.workers.processes import wait_for

EVENTS = "/api/v1/me/events"
NOTIFY = """
import sys, uuid
from api.app import create_app
from models.db import session
from models.people.notifications import notify
with create_app().app_context():
    notify(uuid.UUID(sys.argv[1]), "backtest.finished", {"backtest_id": "b1"})
    session.commit()
"""


def _next_event(response: http.client.HTTPResponse) -> dict[str, str]:
    event = read_event(response)
    while "comment" in event:  # heartbeats (SSE_HEARTBEAT_S=0.3)
        event = read_event(response)
    return event


def _open_events(
    streams: Streams, token: str, **headers: str
) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
    conn, response = streams.get(EVENTS, {"Authorization": f"Bearer {token}", **headers})
    assert response.status == 200, response.read()
    assert read_event(response) == {"retry": "2000"}
    return conn, response


def test_my_events_arrive_resume_and_share_the_per_user_limit(
    start: Callable[..., Streams], redis: Redis, database: str
) -> None:
    from workers.outbox_relay import publish_events  # noqa: PLC0415 - the relay, as is

    streams = start(SSE_MAX_STREAMS_PER_USER="2")
    token = _login(streams)
    me = streams.status_of("/api/v1/me", {"Authorization": f"Bearer {token}"})[1]
    user_id = me["id"]
    assert streams.status_of(EVENTS)[0] == 401
    conn, response = _open_events(streams, token)
    try:
        # A notification committed by another process comes through its outbox relay.
        env = {**os.environ, "DATABASE_URL": database, "REDIS_URL": REDIS_URL or ""}
        subprocess.run([sys.executable, "-c", NOTIFY, user_id], cwd=ROOT, env=env, check=True)
        event = _next_event(response)
        assert event["event"] == "notification"
        assert json.loads(event["data"])["data"] == {"backtest_id": "b1"}
        first_id = event["id"]
        assert redis.xrange(f"events:user:{user_id}")[0][0].decode() == first_id
        assert read_event(response) == {"comment": "heartbeat"}
        # My market and events streams share my budget of two.
        market, _ = open_stream(streams, "BTC-USD", Authorization=f"Bearer {token}")
        status, error = streams.status_of(EVENTS, {"Authorization": f"Bearer {token}"})
        assert status == 429 and "At most 2 open streams" in error["message"]
        market.close()
    finally:
        conn.close()

    # While I am away two bot events arrive; resuming replays exactly those, then live ones.
    uid = uuid.UUID(user_id)
    publish_events(redis, [(uid, "bot.status", {"n": 2}), (uid, "bot.trade", {"n": 3})])
    conn, response = wait_for(
        lambda: _events_or_429(streams, token, first_id), 15, "my slots to be released"
    )
    try:
        replay = [read_event(response), read_event(response)]
        # Everyone's events share the readers' one stream; only mine reach me.
        stranger = uuid.uuid4()
        publish_events(
            redis, [(stranger, "bot.failure", {"n": 99}), (uid, "bot.failure", {"n": 4})]
        )
        live = _next_event(response)
    finally:
        conn.close()
    got = [*replay, live]
    assert [(e["event"], json.loads(e["data"])["n"]) for e in got] == [
        ("bot.status", 2),
        ("bot.trade", 3),
        ("bot.failure", 4),
    ]
    ids = [first_id, *(e["id"] for e in got)]
    assert [i.decode() for i, _ in redis.xrange(f"events:user:{user_id}")] == ids
    status, error = streams.status_of(
        EVENTS, {"Authorization": f"Bearer {token}", "Last-Event-ID": "nope"}
    )
    assert status == 422 and error["code"] == 422 and "Last-Event-ID" in error["message"]


def _events_or_429(
    streams: Streams, token: str, last_id: str
) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse] | None:
    headers = {"Authorization": f"Bearer {token}", "Last-Event-ID": last_id}
    conn, response = streams.get(EVENTS, headers)
    if response.status == 429:
        conn.close()
        return None
    assert response.status == 200, response.read()
    assert read_event(response) == {"retry": "2000"}
    return conn, response


def test_my_events_stream_ends_once_its_token_expires(
    start: Callable[..., Streams], redis: Redis
) -> None:
    streams = start(ACCESS_TOKEN_TTL="5")
    token = _login(streams)
    conn, response = _open_events(streams, token)
    deadline = time.monotonic() + 60
    try:
        while response.readline():  # heartbeats until the server ends the stream
            assert time.monotonic() < deadline, "the stream outlived its token"
    finally:
        conn.close()
    status, error = streams.status_of(EVENTS, {"Authorization": f"Bearer {token}"})
    assert status == 401 and error["code"] == 401
    wait_for(lambda: not redis.keys("sse:open:*"), 15, "the stream's slot to be released")
