"""The Flask application factory."""

from __future__ import annotations

import os
from pathlib import Path

from flask import Flask
from redis import BlockingConnectionPool, Redis
from werkzeug.middleware.proxy_fix import ProxyFix

from api import access, cli, ratelimit_storage
from api.admin import blp as admin_blp
from api.auth import blp as auth_blp
from api.auth.tokens import init_jwt
from api.backtests import blp as backtests_blp
from api.bots import blp as bots_blp
from api.community import blp as community_blp
from api.cors import init_cors
from api.docs_assets import SWAGGER_UI_URL, docs_assets_bp
from api.errors import BotyardApi, register_error_handlers
from api.extensions import jwt, limiter, migrate
from api.health import blp as health_blp
from api.input_guard import init_input_guard
from api.leaderboards import blp as leaderboards_blp
from api.market import blp as market_blp
from api.people import blp as me_blp
from api.people import users_blp
from api.people.activity import init_activity
from api.performance import blp as performance_blp
from api.request_context import init_request_context
from api.strategies import blp as strategies_blp
from logconfig import configure_logging
from models import db as database
from models.leaderboards.preview_cache import set_preview_redis
from settings import Settings
from workers.enqueue import install_outbox_relay

MIGRATIONS_DIR = str(Path(__file__).resolve().parent.parent / "migrations")
BLUEPRINTS = (
    auth_blp,
    me_blp,
    users_blp,
    admin_blp,
    market_blp,
    strategies_blp,
    bots_blp,
    backtests_blp,
    performance_blp,
    leaderboards_blp,
    community_blp,
    health_blp,
)


def create_app(settings: Settings | None = None) -> Flask:
    """Build the app from ``settings`` (default: the process environment)."""
    settings = settings or Settings.from_env(os.environ)
    configure_logging(settings.log_level, settings.log_json)

    app = Flask(__name__, static_folder=None)
    app.extensions["botyard.settings"] = settings
    app.config.update(
        DEBUG=settings.debug,
        TESTING=settings.env == "test",
        PROPAGATE_EXCEPTIONS=False,
        MAX_CONTENT_LENGTH=settings.max_body_bytes,
        API_TITLE="Botyard API",
        API_VERSION="v1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/api",
        OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="docs",
        # Swagger UI from the swagger-ui-bundle package, served by this app: no CDN, works offline.
        OPENAPI_SWAGGER_UI_URL=SWAGGER_UI_URL,
        # No validator badge: it would load an image from swagger.io.
        OPENAPI_SWAGGER_UI_CONFIG={"validatorUrl": None},
        API_SPEC_OPTIONS={
            "security": [{"bearerAuth": []}],
            "components": {
                "securitySchemes": {
                    "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
                }
            },
        },
        RATELIMIT_STORAGE_URI=ratelimit_storage.storage_uri(settings.redis_url),
        RATELIMIT_STORAGE_OPTIONS={
            "socket_connect_timeout": settings.redis_timeout,
            "socket_timeout": settings.redis_timeout,
            "max_connections": settings.redis_pool_size,
        },
    )
    if settings.proxy_hops:
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=settings.proxy_hops, x_proto=settings.proxy_hops
        )

    database.configure(settings.database_url, settings.db_connect_timeout)
    # A blocking pool as large as the thread count: a burst of requests waits for a
    # connection instead of failing (redis-py's default pool refuses past 100).
    pool = BlockingConnectionPool.from_url(
        settings.redis_url,
        max_connections=settings.redis_pool_size,
        timeout=settings.redis_timeout,
        socket_connect_timeout=settings.redis_timeout,
        socket_timeout=settings.redis_timeout,
        health_check_interval=30,
    )
    app.extensions["botyard.redis"] = Redis(connection_pool=pool)
    install_outbox_relay(app.extensions["botyard.redis"], settings)
    # A leaderboard swap in this process (the recompute job) moves the cached preview on.
    set_preview_redis(app.extensions["botyard.redis"])

    init_request_context(app)
    init_activity(app)
    init_cors(app, settings)
    app.before_request(access.deny_undeclared)
    smorest = BotyardApi(app)
    register_error_handlers(app)
    init_jwt(app, jwt)
    init_input_guard(app)  # before the limiter: its key functions read the checked body
    limiter.init_app(app)
    migrate.init_app(app, db=None, directory=MIGRATIONS_DIR)
    for blueprint in BLUEPRINTS:
        smorest.register_blueprint(blueprint)
    app.register_blueprint(docs_assets_bp)
    cli.register(app)
    return app
