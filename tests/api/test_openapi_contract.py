"""The OpenAPI document as a contract that typed clients are generated from.

Operation ids are client method names: the table below is the contract, so renaming one
is a breaking change that this test makes visible.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from flask.testing import FlaskClient
from openapi_spec_validator import validate

from engine.metrics import METRICS_VERSION, Metrics
from engine.strategies import catalogue
from models.performance.snapshots import SNAPSHOT_FIELDS

OPERATIONS = {
    ("post", "/api/v1/auth/register"): "register",
    ("post", "/api/v1/auth/login"): "login",
    ("post", "/api/v1/auth/refresh"): "refreshTokens",
    ("post", "/api/v1/auth/logout"): "logout",
    ("get", "/api/v1/auth/sessions"): "listSessions",
    ("delete", "/api/v1/auth/sessions"): "revokeOtherSessions",
    ("delete", "/api/v1/auth/sessions/{session_id}"): "revokeSession",
    ("post", "/api/v1/auth/password/forgot"): "forgotPassword",
    ("post", "/api/v1/auth/password/reset"): "resetPassword",
    ("post", "/api/v1/auth/password/change"): "changePassword",
    ("get", "/api/v1/me"): "getMe",
    ("get", "/api/v1/me/webhooks"): "listWebhooks",
    ("post", "/api/v1/me/webhooks"): "createWebhook",
    ("get", "/api/v1/me/webhooks/{webhook_id}"): "getWebhook",
    ("patch", "/api/v1/me/webhooks/{webhook_id}"): "updateWebhook",
    ("delete", "/api/v1/me/webhooks/{webhook_id}"): "deleteWebhook",
    ("get", "/api/v1/me/webhooks/{webhook_id}/deliveries"): "listWebhookDeliveries",
    ("post", "/api/v1/me/webhooks/{webhook_id}/ping"): "pingWebhook",
    ("delete", "/api/v1/me"): "deleteAccount",
    ("post", "/api/v1/me/export"): "requestDataExport",
    ("get", "/api/v1/me/exports"): "listDataExports",
    ("get", "/api/v1/me/exports/{export_id}"): "getDataExport",
    ("get", "/api/v1/me/exports/{export_id}/download"): "downloadDataExport",
    ("patch", "/api/v1/me"): "updateMe",
    ("get", "/api/v1/users/{username}"): "getUserProfile",
    ("post", "/api/v1/me/email"): "requestEmailChange",
    ("post", "/api/v1/me/email/confirm"): "confirmEmailChange",
    ("get", "/api/v1/me/settings"): "getSettings",
    ("put", "/api/v1/me/settings"): "replaceSettings",
    ("patch", "/api/v1/me/settings"): "updateSettings",
    ("get", "/api/v1/me/activity"): "listMyActivity",
    ("get", "/api/v1/me/notifications"): "listNotifications",
    ("get", "/api/v1/me/notifications/unread-count"): "getUnreadNotificationCount",
    ("post", "/api/v1/me/notifications/{notification_id}/read"): "markNotificationRead",
    ("post", "/api/v1/me/notifications/read-all"): "markAllNotificationsRead",
    ("get", "/api/v1/me/events"): "streamMyEvents",
    ("get", "/api/v1/admin/users"): "searchUsers",
    ("get", "/api/v1/admin/audit"): "listAuditTrail",
    ("post", "/api/v1/reports"): "createReport",
    ("get", "/api/v1/moderation/reports"): "listModerationReports",
    ("post", "/api/v1/moderation/reports/{report_id}/resolve"): "resolveReport",
    ("post", "/api/v1/moderation/reports/{report_id}/dismiss"): "dismissReport",
    ("post", "/api/v1/moderation/bots/{bot_id}/hide"): "hideBot",
    ("post", "/api/v1/moderation/bots/{bot_id}/restore"): "restoreBot",
    ("post", "/api/v1/moderation/comments/{comment_id}/hide"): "hideComment",
    ("post", "/api/v1/moderation/comments/{comment_id}/restore"): "restoreComment",
    ("put", "/api/v1/admin/users/{user_id}/roles"): "setUserRoles",
    ("post", "/api/v1/admin/users/{user_id}/disable"): "disableUser",
    ("post", "/api/v1/admin/users/{user_id}/enable"): "enableUser",
    ("get", "/api/v1/market/instruments"): "listInstruments",
    ("get", "/api/v1/market/instruments/{symbol}/quote"): "getQuote",
    ("get", "/api/v1/market/instruments/{symbol}/candles"): "listCandles",
    ("get", "/api/v1/market/stream"): "streamMarket",
    ("get", "/api/v1/market/stats"): "getMarketStats",
    ("get", "/api/v1/strategies"): "listStrategies",
    ("get", "/api/v1/bots"): "listBots",
    ("post", "/api/v1/bots"): "createBot",
    ("get", "/api/v1/bots/{bot_id}"): "getBot",
    ("patch", "/api/v1/bots/{bot_id}"): "updateBot",
    ("delete", "/api/v1/bots/{bot_id}"): "deleteBot",
    ("post", "/api/v1/bots/{bot_id}/start"): "startBot",
    ("post", "/api/v1/bots/{bot_id}/pause"): "pauseBot",
    ("post", "/api/v1/bots/{bot_id}/resume"): "resumeBot",
    ("post", "/api/v1/bots/{bot_id}/stop"): "stopBot",
    ("post", "/api/v1/bots/{bot_id}/mirror"): "mirrorBot",
    ("get", "/api/v1/bots/{bot_id}/logs"): "listBotLogs",
    ("get", "/api/v1/bots/{bot_id}/trades"): "listBotTrades",
    ("get", "/api/v1/bots/{bot_id}/equity"): "getBotEquity",
    ("get", "/api/v1/bots/{bot_id}/performance"): "getBotPerformance",
    ("get", "/api/v1/bots/{bot_id}/reconciliation"): "getBotReconciliation",
    ("get", "/api/v1/backtests"): "listBacktests",
    ("get", "/api/v1/backtests/compare"): "compareBacktests",
    ("get", "/api/v1/bots/{bot_id}/backtests"): "listBotBacktests",
    ("post", "/api/v1/backtests"): "createBacktest",
    ("get", "/api/v1/backtests/{backtest_id}"): "getBacktest",
    ("delete", "/api/v1/backtests/{backtest_id}"): "cancelBacktest",
    ("get", "/api/v1/backtests/{backtest_id}/trades"): "listBacktestTrades",
    ("get", "/api/v1/backtests/{backtest_id}/equity"): "getBacktestEquity",
    ("get", "/api/v1/leaderboards"): "getLeaderboard",
    ("get", "/api/v1/leaderboards/preview"): "getLeaderboardPreview",
    ("post", "/api/v1/leaderboards/recompute"): "recomputeLeaderboards",
    ("get", "/api/v1/leaderboards/recompute/{job_id}"): "getLeaderboardRecompute",
    ("get", "/api/v1/bots/{bot_id}/leaderboard-status"): "getBotLeaderboardStatus",
    ("put", "/api/v1/bots/{bot_id}/star"): "starBot",
    ("delete", "/api/v1/bots/{bot_id}/star"): "unstarBot",
    ("get", "/api/v1/me/stars"): "listMyStars",
    ("get", "/api/v1/bots/{bot_id}/comments"): "listBotComments",
    ("post", "/api/v1/bots/{bot_id}/comments"): "createComment",
    ("patch", "/api/v1/comments/{comment_id}"): "updateComment",
    ("delete", "/api/v1/comments/{comment_id}"): "deleteComment",
    ("get", "/api/v1/comments/{comment_id}/replies"): "listCommentReplies",
    # Community: share links and forks (docs/community.md).
    ("get", "/api/v1/bots/{bot_id}/sharing"): "listShareLinks",
    ("post", "/api/v1/bots/{bot_id}/sharing"): "createShareLink",
    ("delete", "/api/v1/bots/{bot_id}/sharing/{link_id}"): "revokeShareLink",
    ("get", "/api/v1/shared/{token}"): "getSharedBot",
    ("post", "/api/v1/bots/{bot_id}/fork"): "forkBot",
    ("post", "/api/v1/shared/{token}/fork"): "forkSharedBot",
    ("get", "/health/live"): "getLiveness",
    ("get", "/health/ready"): "getReadiness",
    ("put", "/api/v1/users/{username}/follow"): "followUser",
    ("delete", "/api/v1/users/{username}/follow"): "unfollowUser",
    ("get", "/api/v1/users/{username}/followers"): "listUserFollowers",
    ("get", "/api/v1/users/{username}/following"): "listUserFollowing",
    ("get", "/api/v1/me/followers"): "listMyFollowers",
    ("get", "/api/v1/me/following"): "listMyFollowing",
    ("put", "/api/v1/users/{username}/block"): "blockUser",
    ("delete", "/api/v1/users/{username}/block"): "unblockUser",
    ("get", "/api/v1/me/blocks"): "listMyBlocks",
    ("get", "/api/v1/feed"): "getFeed",
}
METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
# Reads served when ready (200) and otherwise queued (202 + Location, same URL to poll).
ASYNC_READS = {("get", "/api/v1/bots/{bot_id}/reconciliation"): {"200", "202"}}
# Objects whose keys are open by design (a strategy's params and rule tree, the engine's
# broker state, a log entry's details, ...): a generated client keeps them as maps.
FREE_FORM = {
    ("StrategyOut", "params"),
    ("StrategyOut", "rules"),
    ("StrategyIn", "params"),
    ("StrategyIn", "rules"),
    ("StrategyCatalogueOut", "rules"),
    ("BotRunOut", "broker_state"),
    ("BotLogOut", "data"),
    ("ActivityOut", "data"),
    ("ErrorOut", "errors"),
    ("MarketStatsOut", "streams"),
}


@pytest.fixture
def spec(client: FlaskClient) -> dict[str, Any]:
    response = client.get("/api/openapi.json")
    assert response.status_code == 200
    return dict(response.json or {})


def operations(spec: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield method, path, operation


def walk(node: Any, where: str = "") -> Iterator[tuple[str, Any]]:
    """Every (location, value) in a JSON document, depth first."""
    yield where, node
    if isinstance(node, dict):
        for key, value in node.items():
            yield from walk(value, f"{where}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from walk(value, f"{where}/{i}")


def response_components(spec: dict[str, Any]) -> set[str]:
    """Names of the component schemas reachable from a 2xx response."""
    schemas = spec["components"]["schemas"]
    todo = [
        media["schema"]
        for _, _, operation in operations(spec)
        for status, response in operation["responses"].items()
        if status.startswith("2")
        for media in response.get("content", {}).values()
    ]
    seen: set[str] = set()
    while todo:
        for _, value in walk(todo.pop()):
            if isinstance(value, dict) and isinstance(value.get("$ref"), str):
                name = value["$ref"].rsplit("/", 1)[-1]
                if name not in seen:
                    seen.add(name)
                    todo.append(schemas[name])
    return seen


def test_document_is_valid_openapi(spec: dict[str, Any]) -> None:
    validate(spec)
    assert spec["openapi"].startswith("3.0")


def test_operation_ids_are_the_contract(spec: dict[str, Any]) -> None:
    found = {(method, path): op.get("operationId") for method, path, op in operations(spec)}
    assert found == OPERATIONS
    ids = list(found.values())
    assert len(ids) == len(set(ids))
    for (method, path), operation_id in found.items():
        assert re.fullmatch(r"[a-z][A-Za-z0-9]+", operation_id or ""), (method, path)


def test_every_operation_has_a_tag_and_every_success_a_schema(spec: dict[str, Any]) -> None:
    for method, path, operation in operations(spec):
        where = f"{method.upper()} {path}"
        assert operation.get("tags"), where
        successes = {s: r for s, r in operation["responses"].items() if s.startswith("2")}
        expected = ASYNC_READS.get((method, path))
        assert set(successes) == expected if expected else len(successes) == 1, where
        for status, response in successes.items():
            content = response.get("content", {})
            if status == "204":
                assert not content, where
                continue
            assert content, f"{where} {status} has no body schema"
            assert all("schema" in media for media in content.values()), where


def test_nullable_objects_are_typed(spec: dict[str, Any]) -> None:
    for where, value in walk(spec):
        if not isinstance(value, dict):
            continue
        for key in ("anyOf", "oneOf"):
            for option in value.get(key, []):
                assert option.get("type") != "object" or "properties" in option, where
    bot = spec["components"]["schemas"]["BotWithRunOut"]["properties"]
    assert bot["run"] == {"allOf": [{"$ref": "#/components/schemas/BotRunOut"}], "nullable": True}
    performance = spec["components"]["schemas"]["BotPerformanceOut"]["properties"]
    assert performance["position"]["allOf"] == [{"$ref": "#/components/schemas/PositionOut"}]
    assert performance["metrics"]["allOf"] == [{"$ref": "#/components/schemas/LiveMetricsOut"}]


def test_response_fields_are_required_and_objects_have_schemas(spec: dict[str, Any]) -> None:
    schemas = spec["components"]["schemas"]
    reached = response_components(spec)
    assert {"BotPage", "BacktestOut", "MetricsOut", "StrategyCatalogueOut", "HealthOut"} <= reached
    for name in reached:
        schema = schemas[name]
        properties = schema.get("properties", {})
        assert properties, name
        optional = set(properties) - set(schema.get("required", []))
        assert optional <= {"template", "params", "rules", "min", "max", "choices"}, name
        for field, prop in properties.items():
            if prop.get("type") == "object" and "additionalProperties" not in prop:
                assert (name, field) in FREE_FORM, f"{name}.{field} is an untyped object"


def test_one_page_schema_per_item_type(spec: dict[str, Any]) -> None:
    schemas = spec["components"]["schemas"]
    pages = {name for name in schemas if name.endswith("Page")}
    assert pages == {
        "BotPage",
        "BotTradePage",
        "BacktestPage",
        "TradePage",
        "InstrumentPage",
        "UserPage",
        "WebhookPage",
    }
    for name in pages:
        assert set(schemas[name]["required"]) == {"items", "page", "page_size", "total"}
    assert not any(name.endswith("PageOut") and name != "BotLogPageOut" for name in schemas)


def test_times_rows_and_metrics_are_typed(spec: dict[str, Any]) -> None:
    schemas = spec["components"]["schemas"]
    for name, schema in schemas.items():
        for field, prop in schema.get("properties", {}).items():
            if field.endswith("_at") or field in {"time", "entry_time", "exit_time"}:
                assert prop.get("format") == "date-time", f"{name}.{field}"
    candle_row = schemas["CandlesOut"]["properties"]["rows"]["items"]
    assert candle_row["type"] == "array"
    assert candle_row["items"] == {"type": "number"}
    assert candle_row["minItems"] == candle_row["maxItems"] == 6
    equity_row = schemas["EquityOut"]["properties"]["rows"]["items"]
    assert (equity_row["type"], equity_row["minItems"], equity_row["maxItems"]) == ("array", 2, 2)
    timeframes = schemas["InstrumentOut"]["properties"]["timeframes"]
    assert timeframes["type"] == "array"
    assert timeframes["items"]["enum"] == ["1m", "5m", "15m", "1h", "4h", "1d"]
    start = schemas["BacktestIn"]["properties"]["start"]["oneOf"]
    assert any(b["type"] == "string" and b["format"] == "date-time" for b in start)
    metrics = schemas["MetricsOut"]
    assert set(metrics["properties"]) == {f.name for f in dataclasses.fields(Metrics)}
    assert set(metrics["required"]) == set(metrics["properties"])
    assert all(prop.get("description") for prop in metrics["properties"].values())
    assert f"now ``{METRICS_VERSION}``" in metrics["description"]
    live = schemas["LiveMetricsOut"]
    extra = {"period", "metrics_version", "end_ts", "days", "computed_at"}
    assert set(live["properties"]) == set(SNAPSHOT_FIELDS) | extra
    assert set(live["required"]) == set(live["properties"])
    assert live["properties"]["period"]["enum"] == ["7d", "30d", "90d", "all"]
    performance = spec["paths"]["/api/v1/bots/{bot_id}/performance"]["get"]["parameters"]
    (period,) = [p for p in performance if p["name"] == "period"]
    assert period["in"] == "query" and period["schema"]["default"] == "all"


def test_enums_carry_names(spec: dict[str, Any]) -> None:
    enums = [(w, v) for w, v in walk(spec) if isinstance(v, dict) and "enum" in v]
    assert len(enums) > 20
    for where, value in enums:
        members = [member for member in value["enum"] if member is not None]
        names = value.get("x-enum-varnames")
        assert names is not None, where
        assert len(names) == len(members), where
        assert all(re.fullmatch(r"[A-Z][A-Z0-9_]*", name) for name in names), where
    timeframe = spec["components"]["schemas"]["BotOut"]["properties"]["timeframe"]
    assert dict(zip(timeframe["enum"], timeframe["x-enum-varnames"], strict=True))["1h"] == "H1"


def test_patch_body_documents_no_defaults(spec: dict[str, Any]) -> None:
    """A generated client sends documented defaults; a PATCH must send only what it changes."""
    patch = spec["components"]["schemas"]["BotPatch"]
    assert not [f for f, prop in patch["properties"].items() if "default" in prop]
    assert "required" not in patch


def test_the_catalogue_schema_sends_the_catalogue_unchanged(client: FlaskClient) -> None:
    """Typing GET /strategies changed its document, not its body."""
    response = client.get("/api/v1/strategies")
    assert response.status_code == 200
    assert response.json == json.loads(json.dumps(catalogue()))
