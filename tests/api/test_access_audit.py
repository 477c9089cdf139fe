"""Deny by default: every route declares who may call it."""

from __future__ import annotations

from typing import Any

from flask import Flask

from api.access import AUTHENTICATED, FRESH, PUBLIC, REFRESH, policy_of
from api.app import create_app

ALLOWED_POLICIES = {PUBLIC, AUTHENTICATED, FRESH, REFRESH}

# What a person would expect each route to require; a new route must be added here.
EXPECTED = {
    ("auth.Register", "POST"): PUBLIC,
    ("auth.Login", "POST"): PUBLIC,
    ("auth.Refresh", "POST"): REFRESH,
    ("auth.Logout", "POST"): AUTHENTICATED,
    ("auth.Sessions", "GET"): AUTHENTICATED,
    ("auth.Sessions", "DELETE"): AUTHENTICATED,
    ("auth.SessionById", "DELETE"): AUTHENTICATED,
    ("auth.PasswordForgot", "POST"): PUBLIC,
    ("auth.PasswordReset", "POST"): PUBLIC,
    ("auth.PasswordChange", "POST"): FRESH,
    ("me.Me", "GET"): AUTHENTICATED,
    ("me.Webhooks", "GET"): AUTHENTICATED,
    ("me.Webhooks", "POST"): AUTHENTICATED,
    ("me.WebhookById", "GET"): AUTHENTICATED,
    ("me.WebhookById", "PATCH"): AUTHENTICATED,
    ("me.WebhookById", "DELETE"): AUTHENTICATED,
    ("me.WebhookDeliveries", "GET"): AUTHENTICATED,
    ("me.WebhookPing", "POST"): AUTHENTICATED,
    ("me.AccountDeletion", "DELETE"): AUTHENTICATED,
    ("me.DataExportRequest", "POST"): AUTHENTICATED,
    ("me.DataExports", "GET"): AUTHENTICATED,
    ("me.DataExportById", "GET"): AUTHENTICATED,
    ("me.DataExportDownload", "GET"): AUTHENTICATED,
    ("me.Me", "PATCH"): AUTHENTICATED,
    ("me.EmailChange", "POST"): AUTHENTICATED,
    ("me.EmailConfirm", "POST"): PUBLIC,
    ("me.MySettings", "GET"): AUTHENTICATED,
    ("me.MySettings", "PUT"): AUTHENTICATED,
    ("me.MySettings", "PATCH"): AUTHENTICATED,
    ("users.UserProfile", "GET"): PUBLIC,
    ("me.MyActivity", "GET"): AUTHENTICATED,
    ("me.Notifications", "GET"): AUTHENTICATED,
    ("me.UnreadNotificationCount", "GET"): AUTHENTICATED,
    ("me.NotificationRead", "POST"): AUTHENTICATED,
    ("me.NotificationsReadAll", "POST"): AUTHENTICATED,
    ("me.MyEvents", "GET"): AUTHENTICATED,
    ("admin.AdminUsers", "GET"): "permission:users:read",
    ("admin.AuditTrail", "GET"): "permission:users:manage",
    ("admin.AdminUserRoles", "PUT"): "permission:users:manage",
    ("admin.AdminUserDisable", "POST"): "permission:users:manage",
    ("admin.AdminUserEnable", "POST"): "permission:users:manage",
    # Market data is public (charts on public pages); the API-wide limit applies per caller.
    ("market.Instruments", "GET"): PUBLIC,
    ("market.InstrumentQuote", "GET"): PUBLIC,
    ("market.InstrumentCandles", "GET"): PUBLIC,
    ("market.MarketStream", "GET"): PUBLIC,
    ("market.MarketStats", "GET"): "permission:ops:read",
    ("strategies.Strategies", "GET"): PUBLIC,
    ("bots.Bots", "GET"): AUTHENTICATED,
    ("bots.Bots", "POST"): AUTHENTICATED,
    ("bots.BotById", "GET"): AUTHENTICATED,
    ("bots.BotById", "PATCH"): AUTHENTICATED,
    ("bots.BotById", "DELETE"): AUTHENTICATED,
    ("bots.BotStart", "POST"): AUTHENTICATED,
    ("bots.BotPause", "POST"): AUTHENTICATED,
    ("bots.BotResume", "POST"): AUTHENTICATED,
    ("community.BotMirrors", "POST"): AUTHENTICATED,
    ("bots.BotStop", "POST"): AUTHENTICATED,
    ("bots.BotTrades", "GET"): AUTHENTICATED,
    ("bots.BotEquityCurve", "GET"): AUTHENTICATED,
    ("bots.BotPerformance", "GET"): AUTHENTICATED,
    ("performance.BotReconciliation", "GET"): AUTHENTICATED,
    ("bots.BotLogs", "GET"): AUTHENTICATED,
    ("backtests.Backtests", "GET"): AUTHENTICATED,
    ("backtests.BacktestComparison", "GET"): AUTHENTICATED,
    ("bots.BotBacktests", "GET"): AUTHENTICATED,
    ("backtests.Backtests", "POST"): AUTHENTICATED,
    ("backtests.BacktestById", "GET"): AUTHENTICATED,
    ("backtests.BacktestById", "DELETE"): AUTHENTICATED,
    ("backtests.BacktestTrades", "GET"): AUTHENTICATED,
    ("backtests.BacktestEquityCurve", "GET"): AUTHENTICATED,
    # Leaderboards: the full boards need an account, the preview is the public teaser.
    ("leaderboards.Leaderboards", "GET"): AUTHENTICATED,
    ("leaderboards.LeaderboardPreview", "GET"): PUBLIC,
    ("leaderboards.LeaderboardRecompute", "POST"): "permission:leaderboards:manage",
    ("leaderboards.LeaderboardRecomputeJob", "GET"): "permission:leaderboards:manage",
    ("bots.BotLeaderboardStatus", "GET"): AUTHENTICATED,
    ("community.BotStarById", "PUT"): AUTHENTICATED,
    ("community.BotStarById", "DELETE"): AUTHENTICATED,
    ("community.MyStars", "GET"): AUTHENTICATED,
    ("community.BotComments", "GET"): AUTHENTICATED,
    ("community.BotComments", "POST"): AUTHENTICATED,
    ("community.CommentById", "PATCH"): AUTHENTICATED,
    ("community.CommentById", "DELETE"): AUTHENTICATED,
    ("community.CommentReplies", "GET"): AUTHENTICATED,
    # Moderation: anyone may report; the queue and hiding need content:moderate.
    ("community.Reports", "POST"): AUTHENTICATED,
    ("community.ModerationReports", "GET"): "permission:content:moderate",
    ("community.ModerationReportResolve", "POST"): "permission:content:moderate",
    ("community.ModerationReportDismiss", "POST"): "permission:content:moderate",
    ("community.ModerationBotHide", "POST"): "permission:content:moderate",
    ("community.ModerationBotRestore", "POST"): "permission:content:moderate",
    ("community.ModerationCommentHide", "POST"): "permission:content:moderate",
    ("community.ModerationCommentRestore", "POST"): "permission:content:moderate",
    # Share links: the owner's list, create and revoke; the link itself needs no account.
    ("community.BotShareLinks", "GET"): AUTHENTICATED,
    ("community.BotShareLinks", "POST"): AUTHENTICATED,
    ("community.BotShareLinkById", "DELETE"): AUTHENTICATED,
    ("community.SharedBot", "GET"): PUBLIC,
    ("community.BotFork", "POST"): AUTHENTICATED,
    ("community.SharedBotFork", "POST"): AUTHENTICATED,
    # Community: follows, blocks and the feed.
    ("community.UserFollow", "PUT"): AUTHENTICATED,
    ("community.UserFollow", "DELETE"): AUTHENTICATED,
    ("community.UserFollowers", "GET"): PUBLIC,
    ("community.UserFollowing", "GET"): PUBLIC,
    ("community.MyFollowers", "GET"): AUTHENTICATED,
    ("community.MyFollowing", "GET"): AUTHENTICATED,
    ("community.UserBlock", "PUT"): AUTHENTICATED,
    ("community.UserBlock", "DELETE"): AUTHENTICATED,
    ("community.MyBlocks", "GET"): AUTHENTICATED,
    ("community.Feed", "GET"): AUTHENTICATED,
    ("health.Live", "GET"): PUBLIC,
    ("health.Ready", "GET"): PUBLIC,
    ("api-docs.openapi_json", "GET"): PUBLIC,
    ("api-docs.openapi_swagger_ui", "GET"): PUBLIC,
    ("docs-assets.swagger_ui_asset", "GET"): PUBLIC,
}


def _routes(app: Flask) -> list[tuple[str, str]]:
    pairs = []
    for rule in app.url_map.iter_rules():
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            pairs.append((rule.endpoint, method))
    return pairs


def test_every_route_declares_an_access_policy(app: Flask) -> None:
    with app.test_request_context():
        undeclared = [
            (endpoint, method)
            for endpoint, method in _routes(app)
            if policy_of(endpoint, method) is None
        ]
    assert undeclared == [], f"routes without an access policy: {undeclared}"


def test_declared_policies_match_the_expected_table(app: Flask) -> None:
    with app.test_request_context():
        actual = {pair: policy_of(*pair) for pair in _routes(app)}
    assert actual == EXPECTED
    for policy in actual.values():
        assert policy in ALLOWED_POLICIES or str(policy).startswith("permission:")


def test_a_route_without_a_policy_is_refused_at_runtime(app: Flask, db: Any) -> None:
    probe_app = create_app(app.extensions["botyard.settings"])

    def sneaky() -> str:
        return "should never be served"

    probe_app.add_url_rule("/__audit_probe__", "audit_probe", sneaky)
    response = probe_app.test_client().get("/__audit_probe__")
    assert response.status_code == 403
    assert response.json["code"] == 403
    assert "should never" not in response.text
