"""The one settings object, read from the environment once.

Nothing else in the project reads ``os.environ``; ``create_app`` and the worker
entry points call :meth:`Settings.from_env`, and tests build ``Settings(...)``.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

ENVIRONMENTS = ("development", "test", "production")
MIN_SECRET_BYTES = 32
SSE_RESERVED_THREADS = 16
# The community actions with a per-user abuse limit (settings RATE_LIMIT_<ACTION>).
COMMUNITY_ACTIONS = ("comment", "star", "follow", "fork", "report", "share_link")
# An exact web origin: scheme, host (name, IPv4 or [IPv6]) and optional port; nothing else.
_LIMITS = re.compile(r"\d+ ?/ ?(second|minute|hour|day)(; ?\d+ ?/ ?(second|minute|hour|day))*")
_ORIGIN = re.compile(r"https?://(\[[0-9a-f:.]+\]|[a-z0-9.-]+)(:[0-9]{1,5})?\Z")

# Used only outside production; long enough to satisfy HS256 key-length checks.
_DEV_JWT_SECRET = "botyard-development-secret-not-for-production-use"  # noqa: S105


class SettingsError(RuntimeError):
    """The environment does not describe a usable configuration."""


def normalize_database_url(url: str) -> str:
    """Map ``postgres://`` and ``postgresql://`` URLs onto the installed driver.

    psycopg 3 is preferred; psycopg2 is used only when psycopg 3 is missing.
    URLs that already name a driver are left alone.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise SettingsError("DATABASE_URL must look like postgresql://user@host:port/dbname")
    if scheme not in ("postgres", "postgresql"):
        if scheme.startswith("postgresql+"):
            return url
        raise SettingsError(f"DATABASE_URL scheme {scheme!r} is not PostgreSQL")
    driver = "psycopg" if importlib.util.find_spec("psycopg") else "psycopg2"
    return f"postgresql+{driver}://{rest}"


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise SettingsError(f"{name} must be an integer, got {raw!r}") from exc


def origin_of(url: str) -> str:
    """The origin (``scheme://host[:port]``) of an http(s) URL, lower-cased, no trailing slash."""
    parts = urlsplit(url.strip())
    return f"{parts.scheme}://{parts.netloc}".lower()


def _origins(env: Mapping[str, str], frontend_url: str) -> tuple[str, ...]:
    """CORS_ORIGINS as a tuple (comma-separated); default: the origin of FRONTEND_URL."""
    raw = env.get("CORS_ORIGINS", "")
    if not raw.strip():
        return (origin_of(frontend_url),)
    return tuple(part.strip().rstrip("/").lower() for part in raw.split(",") if part.strip())


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise SettingsError(f"{name} must be a number, got {raw!r}") from exc


def _str(env: Mapping[str, str], name: str, default: str) -> str:
    return env.get(name, default)


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in ("1", "true", "yes", "on"):
        return True
    if raw.lower() in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"{name} must be 1 or 0, got {raw!r}")


_PARSERS: dict[str, Callable[[Mapping[str, str], str, Any], object]] = {
    "int": _int,
    "float": _float,
    "str": _str,
    "bool": _bool,
}
# Fields read from a variable not named after them.
_ENV_NAMES = {"env": "BOTYARD_ENV", "proxy_hops": "TRUSTED_PROXY_HOPS"}
# Fields computed in from_env from other variables; fields no variable sets.
_DERIVED = {
    "env",
    "database_url",
    "jwt_secret_key",
    "log_level",
    "log_json",
    "web_max_streams",
    "frontend_url",
    "cors_origins",
}
_CONSTANTS = {"jwt_algorithm", "db_connect_timeout", "redis_timeout"}


@dataclass(frozen=True)
class Settings:
    """Typed configuration; see the README's configuration table."""

    env: str = "development"
    database_url: str = "postgresql+psycopg://botyard@127.0.0.1:54329/botyard"
    redis_url: str = "redis://127.0.0.1:63790/0"
    jwt_secret_key: str = _DEV_JWT_SECRET
    jwt_algorithm: str = "HS256"
    access_token_ttl: int = 15 * 60
    refresh_token_ttl: int = 30 * 24 * 3600
    max_body_bytes: int = 64 * 1024
    # flask-limiter rate strings ("N per period"); see docs/api.md.
    rate_limit_anonymous: str = "120/minute"
    rate_limit_user: str = "600/minute"
    rate_limit_moderator: str = "1200/minute"
    rate_limit_login_ip: str = "20/minute"
    rate_limit_login_account: str = "10/minute"
    rate_limit_login_account_ip: str = "5/minute"
    rate_limit_register_ip: str = "10/minute"
    log_level: str = "INFO"
    log_json: bool = False
    db_connect_timeout: int = 2
    redis_timeout: float = 1.5
    proxy_hops: int = 0
    web_threads: int = 64
    feed_speed: float = 1.0
    sse_max_symbols: int = 10
    sse_max_streams_per_user: int = 5
    # The streams process (api.streams): open streams it holds, where it listens, the threads
    # that run a stream's opening request through the app. A web process serves streams too,
    # each on a gunicorn thread, at most web_max_streams (WEB_THREADS - 16 by default).
    sse_max_streams_per_process: int = 10_000
    sse_heartbeat_s: float = 15.0
    web_max_streams: int = 48
    streams_host: str = "127.0.0.1"
    streams_port: int = 8001
    streams_threads: int = 8
    seed_history_days: int = 30
    # Email (password reset and, later, notifications); see docs/email.md.
    smtp_url: str = "smtp://127.0.0.1:1025"
    mail_from: str = "Botyard <no-reply@botyard.local>"
    frontend_url: str = "http://127.0.0.1:3000"
    password_reset_ttl: int = 30 * 60
    # Browser apps allowed to call the API (exact origins, or "*"); see docs/api.md, "CORS".
    cors_origins: tuple[str, ...] = ("http://127.0.0.1:3000",)
    cors_allow_credentials: bool = False
    cors_max_age: int = 600
    rate_limit_reset_ip: str = "10/hour"
    rate_limit_reset_email: str = "5/hour"
    # Backtests: queued + running per user, by best role; size limits checked before enqueueing.
    backtest_quota_user: int = 2
    backtest_quota_moderator: int = 4
    backtest_quota_admin: int = 10
    backtest_max_bars: int = 1_000_000
    backtest_max_days: int = 3660
    backtest_timeout: int = 1800
    # A worker that misses its heartbeats this long is dead: its jobs are re-queued.
    worker_heartbeat_ttl: int = 30
    # Live bots: running + paused per user, by best role (docs/execution.md).
    bot_limit_user: int = 5
    bot_limit_moderator: int = 10
    bot_limit_admin: int = 50
    # Live ticks: failures in a row before a run moves to error; runs per tick job.
    bot_max_failures: int = 5
    bot_tick_chunk: int = 200
    # Signals restart from a new anchor every this many bars of a run (bounds a tick's cost).
    bot_epoch_bars: int = 2000
    # A tick trades on its target candle and the bars just before it; older ones only mark equity.
    bot_fresh_bars: int = 3
    # The catch-up sweep: runs a pass may queue, and how long the dispatcher gets first.
    bot_sweep_limit: int = 5000
    bot_sweep_grace_s: int = 30
    # Days a run's per-candle "tick" log entries are kept (trades and failures stay).
    bot_tick_log_days: int = 30
    # Backtest <-> live reconciliation (docs/reconciliation.md): minutes between refreshes of
    # public bots' reports; the equity distance, as a fraction of the run's initial
    # capital, beyond which a report is marked diverged (any missing or extra trade is too).
    reconciliation_interval_minutes: int = 60
    reconciliation_divergence_threshold: float = 0.001
    # Live performance (issue 14): seconds between passes of the rollup and snapshot job.
    performance_refresh_seconds: int = 60
    # People (issue 13): each block belongs to one part of the area; docs/accounts.md.
    # --- profiles, settings and email change ---
    # Seconds an email-change confirmation link works (docs/accounts.md, "Profiles").
    email_change_ttl: int = 24 * 3600
    # --- notifications: delivery, email, digest ---
    # The daily digest goes out from this hour (UTC); docs/accounts.md, "Notifications".
    digest_hour_utc: int = 7
    # Pending deliveries older than this are queued again by the sweep (Redis was away).
    delivery_sweep_grace_s: int = 120
    # A login from an address and a device unseen for this many days is notified.
    new_login_lookback_days: int = 90
    # --- webhooks ---
    # Webhooks per user; failed attempts in a row before a hook is disabled; seconds per
    # network step of a delivery; loopback URLs allowed (tests and development only).
    webhook_limit: int = 10
    webhook_max_failures: int = 15
    webhook_timeout_s: float = 10.0
    webhook_allow_loopback: bool = False
    # --- live events stream ---
    # A user's events stream (GET /api/v1/me/events) keeps at most about this many entries
    # (Redis trims the oldest) and expires after this long without a new one.
    events_stream_maxlen: int = 1000
    events_stream_ttl_s: int = 7 * 86400
    # --- export and deletion ---
    # Data exports a user may ask for per 24 hours; hours a ready export stays downloadable.
    export_limit_per_day: int = 3
    export_ttl_hours: int = 24
    # Days between DELETE /me and the erasure of the account (logging in meanwhile cancels).
    account_deletion_grace_days: int = 30
    # --- activity and audit ---
    # 0: track() records nothing (the benchmark's baseline); docs/accounts.md.
    activity_tracking: bool = True
    # Days an activity row is kept before the daily purge deletes it.
    activity_retention_days: int = 365
    # Leaderboards (issue 14; docs/leaderboards.md): the recompute's period, eligibility
    # minimums, generations kept, the top N whose new placings notify their owner, and the
    # per-caller limit of the public preview.
    leaderboard_interval_minutes: int = 15
    leaderboard_min_days: int = 7
    leaderboard_min_trades: int = 5
    leaderboard_keep_generations: int = 3
    leaderboard_notify_top_n: int = 10
    rate_limit_leaderboard_preview: str = "60/minute"
    # Community abuse limits (issue 15; docs/community.md#abuse-limits): per user and
    # action, on top of the API-wide limit; a moderator gets COMMUNITY_MODERATOR_FACTOR
    # times each budget, an admin none.
    rate_limit_comment: str = "10/minute;200/day"
    rate_limit_star: str = "60/minute;1000/day"
    rate_limit_follow: str = "30/minute;500/day"
    rate_limit_fork: str = "10/minute;100/day"
    rate_limit_report: str = "10/hour;50/day"
    rate_limit_share_link: str = "20/hour;100/day"
    # GET /shared/{token}, per client address (public: no account to count against).
    rate_limit_shared_view: str = "60/minute"
    community_moderator_factor: int = 10

    def __post_init__(self) -> None:
        self.validate()

    def for_role(self, name: str, roles: Sequence[str]) -> int:
        """A per-role limit such as ``backtest_quota``: the admin's, moderator's or user's value."""
        best = "admin" if "admin" in roles else "moderator" if "moderator" in roles else "user"
        value: int = getattr(self, f"{name}_{best}")
        return value

    @property
    def redis_pool_size(self) -> int:
        """Connections per Redis pool of a web process: one per thread, plus the SSE hub's."""
        return self.web_threads + 16

    @property
    def debug(self) -> bool:
        """Flask debug mode: only ever in development."""
        return self.env == "development"

    @property
    def is_production(self) -> bool:
        """True when running with BOTYARD_ENV=production."""
        return self.env == "production"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        """Build settings from an environment mapping and validate them.

        A field ``some_name`` is read from ``SOME_NAME`` and parsed by its type, except
        the few in ``_ENV_NAMES`` (another variable name) and ``_DERIVED`` (computed here).
        """
        name = env.get("BOTYARD_ENV", "development").strip().lower()
        defaults = cls()
        values: dict[str, object] = {}
        for field in dataclasses.fields(cls):
            if field.name in _CONSTANTS or field.name in _DERIVED:
                continue
            var = _ENV_NAMES.get(field.name, field.name.upper())
            default = getattr(defaults, field.name)
            values[field.name] = _PARSERS[str(field.type)](env, var, default)
        secret = env.get("JWT_SECRET_KEY", "")
        if not secret and name != "production":
            secret = _DEV_JWT_SECRET
        frontend_url = env.get("FRONTEND_URL", defaults.frontend_url).rstrip("/")
        web_threads = _int(env, "WEB_THREADS", defaults.web_threads)
        values.update(
            env=name,
            database_url=normalize_database_url(env.get("DATABASE_URL", defaults.database_url)),
            jwt_secret_key=secret,
            log_level=env.get("LOG_LEVEL", defaults.log_level).upper(),
            log_json=env.get("LOG_JSON", "1" if name == "production" else "0") == "1",
            # Each stream on web holds one of gunicorn's threads: keep some for other requests.
            web_max_streams=_int(
                env, "WEB_MAX_STREAMS", max(1, web_threads - SSE_RESERVED_THREADS)
            ),
            frontend_url=frontend_url,
            cors_origins=_origins(env, frontend_url),
        )
        return cls(**values)  # type: ignore[arg-type]

    def replace(self, **changes: object) -> Settings:
        """A copy with some fields changed (tests use this)."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    def validate(self) -> None:
        """Refuse configurations that must never run."""
        if self.env not in ENVIRONMENTS:
            raise SettingsError(f"BOTYARD_ENV must be one of {', '.join(ENVIRONMENTS)}")
        if self.is_production:
            if len(self.jwt_secret_key.encode()) < MIN_SECRET_BYTES:
                raise SettingsError(
                    f"JWT_SECRET_KEY must be set to at least {MIN_SECRET_BYTES} bytes in production"
                )
            if self.jwt_secret_key == _DEV_JWT_SECRET:
                raise SettingsError("JWT_SECRET_KEY is the development default")
            if "*" in self.cors_origins and self.cors_allow_credentials:
                # Any site could then make calls that carry the user's cookies.
                raise SettingsError("CORS_ORIGINS '*' is refused with CORS_ALLOW_CREDENTIALS=1")
        if not 0 < self.feed_speed <= 3600:
            raise SettingsError("FEED_SPEED must be in (0, 3600]")
        if not 0 <= self.seed_history_days <= 3650:
            raise SettingsError("SEED_HISTORY_DAYS must be between 0 and 3650")
        self._validate_jobs()
        self._validate_cors()
        self._validate_streams()
        self._validate_people()
        self._validate_notifications()
        self._validate_leaderboards()
        self._validate_community()
        if not 60 <= self.password_reset_ttl <= 24 * 3600:
            raise SettingsError("PASSWORD_RESET_TTL must be between 60 and 86400 seconds")
        if not self.frontend_url.startswith(("http://", "https://")):
            raise SettingsError("FRONTEND_URL must be an http(s) URL")
        if not self.smtp_url.startswith(("smtp://", "smtps://")):
            raise SettingsError("SMTP_URL must look like smtp://host:port or smtps://host:port")
        if self.access_token_ttl <= 0 or self.refresh_token_ttl <= self.access_token_ttl:
            raise SettingsError("token lifetimes must be positive, refresh longer than access")

    def _validate_notifications(self) -> None:
        """The digest hour, the delivery sweep's grace and the new-login window."""
        if not 0 <= self.digest_hour_utc <= 23:
            raise SettingsError("DIGEST_HOUR_UTC must be an hour, 0-23")
        if not 10 <= self.delivery_sweep_grace_s <= 86_400:
            raise SettingsError("DELIVERY_SWEEP_GRACE_S must be between 10 and 86400 seconds")
        if not 1 <= self.new_login_lookback_days <= 3650:
            raise SettingsError("NEW_LOGIN_LOOKBACK_DAYS must be between 1 and 3650")

    def _validate_leaderboards(self) -> None:
        """The recompute's schedule, eligibility minimums, retention and notifications."""
        if not 1 <= self.leaderboard_interval_minutes <= 1440:
            raise SettingsError("LEADERBOARD_INTERVAL_MINUTES must be between 1 and 1440")
        if not 0 <= self.leaderboard_min_days <= 3650:
            raise SettingsError("LEADERBOARD_MIN_DAYS must be between 0 and 3650")
        if not 0 <= self.leaderboard_min_trades <= 100_000:
            raise SettingsError("LEADERBOARD_MIN_TRADES must be between 0 and 100000")
        if not 2 <= self.leaderboard_keep_generations <= 100:
            raise SettingsError("LEADERBOARD_KEEP_GENERATIONS must be between 2 and 100")
        if not 0 <= self.leaderboard_notify_top_n <= 1000:
            raise SettingsError("LEADERBOARD_NOTIFY_TOP_N must be between 0 and 1000 (0: off)")
        if not re.fullmatch(r"\d+ ?(/|per) ?\w+", self.rate_limit_leaderboard_preview.strip()):
            raise SettingsError("RATE_LIMIT_LEADERBOARD_PREVIEW must look like 60/minute")

    def _validate_community(self) -> None:
        """The per-action abuse limits: one or more ``N/period`` separated by ``;``."""
        for action in COMMUNITY_ACTIONS:
            value = str(getattr(self, f"rate_limit_{action}")).strip()
            if not _LIMITS.fullmatch(value):
                raise SettingsError(
                    f"RATE_LIMIT_{action.upper()} must look like 10/minute or 10/minute;200/day"
                )
        if not _LIMITS.fullmatch(self.rate_limit_shared_view.strip()):
            raise SettingsError("RATE_LIMIT_SHARED_VIEW must look like 60/minute")
        if not 1 <= self.community_moderator_factor <= 1000:
            raise SettingsError("COMMUNITY_MODERATOR_FACTOR must be between 1 and 1000")

    def _validate_cors(self) -> None:
        """Exact origins only: a path, a pattern or a typo would silently never match."""
        for origin in self.cors_origins:
            if origin != "*" and not _ORIGIN.match(origin):
                raise SettingsError(
                    f"CORS_ORIGINS entry {origin!r} is not an origin like https://app.example.com"
                )
        if not 0 <= self.cors_max_age <= 86_400:
            raise SettingsError("CORS_MAX_AGE must be between 0 and 86400 seconds")

    def _validate_streams(self) -> None:
        """Stream limits and the streams process."""
        if not 10 <= self.events_stream_maxlen <= 100_000:
            raise SettingsError("EVENTS_STREAM_MAXLEN must be between 10 and 100000")
        if not 60 <= self.events_stream_ttl_s <= 90 * 86400:
            raise SettingsError("EVENTS_STREAM_TTL_S must be between 60 and 7776000 (90 days)")
        if min(self.sse_max_streams_per_process, self.web_max_streams, self.streams_threads) < 1:
            raise SettingsError(
                "SSE_MAX_STREAMS_PER_PROCESS, WEB_MAX_STREAMS and STREAMS_THREADS "
                "must be at least 1"
            )
        if not 0.05 <= self.sse_heartbeat_s <= 300:
            raise SettingsError("SSE_HEARTBEAT_S must be between 0.05 and 300 seconds")
        if not 0 <= self.streams_port <= 65535:
            raise SettingsError("STREAMS_PORT must be a TCP port (0-65535)")

    def _validate_people(self) -> None:
        """Account settings, email change, webhooks, export and deletion, activity."""
        if not 300 <= self.email_change_ttl <= 7 * 24 * 3600:
            raise SettingsError("EMAIL_CHANGE_TTL must be between 300 and 604800 seconds")
        if not 1 <= self.activity_retention_days <= 3650:
            raise SettingsError("ACTIVITY_RETENTION_DAYS must be between 1 and 3650")
        self._validate_webhooks()
        self._validate_lifecycle()

    def _validate_webhooks(self) -> None:
        """Webhook limits; loopback targets never in production (docs/webhooks.md)."""
        if self.is_production and self.webhook_allow_loopback:
            raise SettingsError("WEBHOOK_ALLOW_LOOPBACK is for tests and development only")
        if not 0 <= self.webhook_limit <= 1000:
            raise SettingsError("WEBHOOK_LIMIT must be between 0 and 1000")
        if not 1 <= self.webhook_max_failures <= 1000:
            raise SettingsError("WEBHOOK_MAX_FAILURES must be between 1 and 1000")
        if not 0.5 <= self.webhook_timeout_s <= 30:
            raise SettingsError("WEBHOOK_TIMEOUT_S must be between 0.5 and 30 seconds")

    def _validate_lifecycle(self) -> None:
        """Data export and account deletion (docs/accounts.md, Export and deletion)."""
        if not 1 <= self.export_limit_per_day <= 100:
            raise SettingsError("EXPORT_LIMIT_PER_DAY must be between 1 and 100")
        if not 1 <= self.export_ttl_hours <= 168:
            raise SettingsError("EXPORT_TTL_HOURS must be between 1 and 168")
        if not 1 <= self.account_deletion_grace_days <= 365:
            raise SettingsError("ACCOUNT_DELETION_GRACE_DAYS must be between 1 and 365")

    def _validate_jobs(self) -> None:
        """Backtest and live-bot limits."""
        if min(self.backtest_quota_user, self.backtest_max_bars, self.backtest_max_days) < 1:
            raise SettingsError("backtest quotas and limits must be at least 1")
        if min(self.bot_limit_user, self.bot_limit_moderator, self.bot_limit_admin) < 0:
            raise SettingsError("BOT_LIMIT_USER, _MODERATOR and _ADMIN must not be negative")
        if min(self.bot_max_failures, self.bot_tick_chunk, self.bot_fresh_bars) < 1:
            raise SettingsError(
                "BOT_MAX_FAILURES, BOT_TICK_CHUNK and BOT_FRESH_BARS must be at least 1"
            )
        if not 10 <= self.bot_epoch_bars <= 100_000:
            raise SettingsError("BOT_EPOCH_BARS must be between 10 and 100000")
        if not 10 <= self.performance_refresh_seconds <= 86_400:
            raise SettingsError("PERFORMANCE_REFRESH_SECONDS must be between 10 and 86400")
        if self.bot_sweep_limit < 1 or self.bot_sweep_grace_s < 0:
            raise SettingsError("BOT_SWEEP_LIMIT must be at least 1, BOT_SWEEP_GRACE_S >= 0")
        if self.bot_tick_log_days < 1:
            raise SettingsError("BOT_TICK_LOG_DAYS must be at least 1")
        if not 1 <= self.reconciliation_interval_minutes <= 7 * 24 * 60:
            raise SettingsError("RECONCILIATION_INTERVAL_MINUTES must be between 1 and 10080")
        if not 0 <= self.reconciliation_divergence_threshold <= 1:
            raise SettingsError("RECONCILIATION_DIVERGENCE_THRESHOLD must be between 0 and 1")
        if not 3 <= self.worker_heartbeat_ttl <= 600:
            raise SettingsError("WORKER_HEARTBEAT_TTL must be between 3 and 600 seconds")
