"""The settings object: URL normalisation and production refusals."""

from __future__ import annotations

import pytest

from settings import Settings, SettingsError, normalize_database_url

STRONG = "k" * 32


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgres://u:p@db:5432/app", "postgresql+psycopg://u:p@db:5432/app"),
        ("postgresql://u@localhost/app", "postgresql+psycopg://u@localhost/app"),
        ("postgresql+psycopg://u@h/app", "postgresql+psycopg://u@h/app"),
    ],
)
def test_database_urls_are_normalised_to_psycopg3(given: str, expected: str) -> None:
    assert normalize_database_url(given) == expected
    assert Settings.from_env({"DATABASE_URL": given}).database_url == expected


@pytest.mark.parametrize("bad", ["mysql://u@h/db", "not a url", "sqlite:///x.db"])
def test_non_postgres_urls_are_refused(bad: str) -> None:
    with pytest.raises(SettingsError):
        normalize_database_url(bad)


def test_development_defaults_work_without_any_environment() -> None:
    settings = Settings.from_env({})
    assert settings.env == "development"
    assert settings.debug is True
    assert settings.access_token_ttl == 900
    assert settings.refresh_token_ttl == 30 * 24 * 3600


@pytest.mark.parametrize("secret", [None, "", "short", "x" * 31])
def test_production_refuses_a_missing_or_short_jwt_secret(secret: str | None) -> None:
    env = {"BOTYARD_ENV": "production"}
    if secret is not None:
        env["JWT_SECRET_KEY"] = secret
    with pytest.raises(SettingsError, match="JWT_SECRET_KEY"):
        Settings.from_env(env)


def test_production_with_a_strong_secret_runs_without_debug_and_logs_json() -> None:
    settings = Settings.from_env({"BOTYARD_ENV": "production", "JWT_SECRET_KEY": STRONG})
    assert settings.is_production and settings.debug is False and settings.log_json is True


def test_settings_cannot_be_built_for_production_with_a_weak_secret() -> None:
    with pytest.raises(SettingsError):
        Settings(env="production", jwt_secret_key="short")
    with pytest.raises(SettingsError, match="development default"):
        Settings(env="production")


def test_ttls_and_environment_are_validated() -> None:
    with pytest.raises(SettingsError, match="BOTYARD_ENV"):
        Settings.from_env({"BOTYARD_ENV": "staging"})
    with pytest.raises(SettingsError, match="integer"):
        Settings.from_env({"ACCESS_TOKEN_TTL": "soon"})
    with pytest.raises(SettingsError, match="lifetimes"):
        Settings.from_env({"ACCESS_TOKEN_TTL": "100", "REFRESH_TOKEN_TTL": "50"})
    assert Settings.from_env({"ACCESS_TOKEN_TTL": "60"}).access_token_ttl == 60


def test_per_role_limits_pick_the_best_role() -> None:
    s = Settings(backtest_quota_user=2, backtest_quota_moderator=4, backtest_quota_admin=10)
    assert s.for_role("backtest_quota", ["user"]) == 2
    assert s.for_role("backtest_quota", ["moderator", "user"]) == 4
    assert s.for_role("backtest_quota", ["admin", "moderator"]) == 10
    assert s.for_role("bot_limit", []) == s.bot_limit_user


def test_live_tick_settings_are_read_and_bounded() -> None:
    env = {
        "BOT_EPOCH_BARS": "500",
        "BOT_FRESH_BARS": "2",
        "BOT_SWEEP_LIMIT": "10",
        "BOT_SWEEP_GRACE_S": "0",
    }
    s = Settings.from_env(env)
    assert (s.bot_epoch_bars, s.bot_fresh_bars, s.bot_sweep_limit, s.bot_sweep_grace_s) == (
        500,
        2,
        10,
        0,
    )
    with pytest.raises(SettingsError, match="BOT_EPOCH_BARS"):
        Settings.from_env({"BOT_EPOCH_BARS": "5"})
    with pytest.raises(SettingsError, match="BOT_FRESH_BARS"):
        Settings.from_env({"BOT_FRESH_BARS": "0"})
    with pytest.raises(SettingsError, match="BOT_SWEEP_LIMIT"):
        Settings.from_env({"BOT_SWEEP_GRACE_S": "-1"})


def test_tick_log_retention_is_at_least_a_day() -> None:
    assert Settings.from_env({"BOT_TICK_LOG_DAYS": "7"}).bot_tick_log_days == 7
    with pytest.raises(SettingsError, match="BOT_TICK_LOG_DAYS"):
        Settings.from_env({"BOT_TICK_LOG_DAYS": "0"})


def test_reconciliation_settings_are_read_and_bounded() -> None:
    default = Settings()
    assert default.reconciliation_interval_minutes == 60
    assert default.reconciliation_divergence_threshold == 0.001
    env = {"RECONCILIATION_INTERVAL_MINUTES": "15", "RECONCILIATION_DIVERGENCE_THRESHOLD": "0.01"}
    read = Settings.from_env(env)
    assert read.reconciliation_interval_minutes == 15
    assert read.reconciliation_divergence_threshold == 0.01
    for name, bad in (
        ("RECONCILIATION_INTERVAL_MINUTES", "0"),
        ("RECONCILIATION_INTERVAL_MINUTES", "10081"),
        ("RECONCILIATION_DIVERGENCE_THRESHOLD", "-0.1"),
        ("RECONCILIATION_DIVERGENCE_THRESHOLD", "1.5"),
    ):
        with pytest.raises(SettingsError, match=name):
            Settings.from_env({name: bad})


def test_cors_origins_default_to_the_frontend_origin_and_parse_a_list() -> None:
    assert Settings.from_env({}).cors_origins == ("http://127.0.0.1:3000",)
    s = Settings.from_env({"FRONTEND_URL": "https://App.Example.com/reset/"})
    assert s.cors_origins == ("https://app.example.com",)
    assert (s.cors_allow_credentials, s.cors_max_age) == (False, 600)
    s = Settings.from_env(
        {"CORS_ORIGINS": " https://a.example.com/, http://[::1]:5173 ,", "CORS_MAX_AGE": "60"}
    )
    assert s.cors_origins == ("https://a.example.com", "http://[::1]:5173")
    assert s.cors_max_age == 60


@pytest.mark.parametrize(
    "bad",
    ["a.example.com", "https://a.example.com/app", "https://*.example.com", "ftp://a.b", "null"],
)
def test_cors_origins_must_be_exact_origins(bad: str) -> None:
    with pytest.raises(SettingsError, match="CORS_ORIGINS"):
        Settings.from_env({"CORS_ORIGINS": bad})
    with pytest.raises(SettingsError, match="CORS_MAX_AGE"):
        Settings.from_env({"CORS_MAX_AGE": "-1"})


def test_production_refuses_any_origin_with_credentials() -> None:
    prod = {"BOTYARD_ENV": "production", "JWT_SECRET_KEY": STRONG, "CORS_ORIGINS": "*"}
    assert Settings.from_env(prod).cors_origins == ("*",)  # without credentials: allowed
    with pytest.raises(SettingsError, match="CORS_ALLOW_CREDENTIALS"):
        Settings.from_env({**prod, "CORS_ALLOW_CREDENTIALS": "1"})
    with pytest.raises(SettingsError, match="CORS_ALLOW_CREDENTIALS"):
        Settings(
            env="production",
            jwt_secret_key=STRONG,
            cors_origins=("https://a.b", "*"),
            cors_allow_credentials=True,
        )
    credentialed = Settings.from_env(
        {**prod, "CORS_ORIGINS": "https://app.example.com", "CORS_ALLOW_CREDENTIALS": "1"}
    )
    assert credentialed.cors_allow_credentials is True


def test_webhook_loopback_is_for_tests_and_development_only() -> None:
    assert Settings.from_env({"WEBHOOK_ALLOW_LOOPBACK": "1"}).webhook_allow_loopback is True
    production = {"BOTYARD_ENV": "production", "JWT_SECRET_KEY": STRONG}
    assert Settings.from_env(production).webhook_allow_loopback is False
    with pytest.raises(SettingsError, match="WEBHOOK_ALLOW_LOOPBACK"):
        Settings.from_env({**production, "WEBHOOK_ALLOW_LOOPBACK": "1"})
    with pytest.raises(SettingsError, match="WEBHOOK_MAX_FAILURES"):
        Settings.from_env({"WEBHOOK_MAX_FAILURES": "0"})


def test_leaderboard_settings_are_read_and_bounded() -> None:
    env = {
        "LEADERBOARD_INTERVAL_MINUTES": "5",
        "LEADERBOARD_MIN_DAYS": "14",
        "LEADERBOARD_MIN_TRADES": "20",
        "LEADERBOARD_KEEP_GENERATIONS": "4",
        "LEADERBOARD_NOTIFY_TOP_N": "3",
        "RATE_LIMIT_LEADERBOARD_PREVIEW": "30/minute",
    }
    s = Settings.from_env(env)
    assert (s.leaderboard_interval_minutes, s.leaderboard_min_days) == (5, 14)
    assert (s.leaderboard_min_trades, s.leaderboard_keep_generations) == (20, 4)
    assert s.leaderboard_notify_top_n == 3 and s.rate_limit_leaderboard_preview == "30/minute"
    for bad in (
        {"leaderboard_interval_minutes": 0},
        {"leaderboard_min_days": -1},
        {"leaderboard_min_trades": -1},
        {"leaderboard_keep_generations": 1},
        {"leaderboard_notify_top_n": -1},
        {"rate_limit_leaderboard_preview": "lots"},
    ):
        with pytest.raises(SettingsError):
            Settings(**bad)  # type: ignore[arg-type]
