"""Export and deletion through the client generated from /api/openapi.json, every body typed."""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from types import ModuleType
from typing import Any

from flask import Flask

from tests.api import test_generated_client as contract
from tests.helpers import PASSWORD
from workers.main import build_worker
from workers.queues import DEFAULT

PACKAGE, Api = contract.PACKAGE, contract.Api
generated = contract.generated  # the package-generating fixture, used here too


def test_export_and_deletion_through_the_generated_client(
    generated: ModuleType, app: Flask, db: Any, make_user: Callable[..., Any]
) -> None:
    api = Api(generated, app)
    m = api.models
    user = make_user()
    anonymous = api.client()
    tokens = api.call(
        "auth.login", anonymous, 200, body=m.LoginIn(login=user.username, password=PASSWORD)
    )
    assert tokens.deletion_cancelled is False
    me = api.client(tokens.access_token)

    queued = api.call("me.request_data_export", me, 202)
    assert queued.status == m.DataExportOutStatus.QUEUED and queued.download_url is None
    assert build_worker(app, (DEFAULT,), simple=True).work(burst=True) is True
    ready = api.call("me.get_data_export", me, 200, queued.id)
    assert ready.status == m.DataExportOutStatus.READY and ready.size_bytes > 0
    listed = api.call("me.list_data_exports", me, 200, limit=5)
    assert [e.id for e in listed.items] == [queued.id] and listed.next_cursor is None
    download = importlib.import_module(f"{PACKAGE}.api.me.download_data_export")
    response = download.sync_detailed(queued.id, client=me)
    assert response.status_code == 200
    assert json.loads(response.content)["profile"]["username"] == user.username

    scheduled = api.call("me.delete_account", me, 202, body=m.AccountDeletionIn(password=PASSWORD))
    assert isinstance(scheduled, m.AccountDeletionOut)
    assert scheduled.deletion_due_at > scheduled.deletion_requested_at
    refused = importlib.import_module(f"{PACKAGE}.api.me.get_me").sync_detailed(client=me)
    assert refused.status_code == 401
    back = api.call(
        "auth.login", anonymous, 200, body=m.LoginIn(login=user.username, password=PASSWORD)
    )
    assert back.deletion_cancelled is True
