"""Extension singletons, bound to an app in ``create_app``.

flask-smorest's ``Api`` keeps one spec per instance, so ``create_app`` makes a new
one for every app instead of sharing a singleton.
"""

from __future__ import annotations

from typing import cast

from flask import current_app
from flask_jwt_extended import JWTManager
from flask_migrate import Migrate
from redis import Redis

from api.ratelimit import limiter
from settings import Settings

jwt = JWTManager()
migrate = Migrate()

__all__ = ["jwt", "limiter", "migrate", "redis_client", "settings"]


def settings() -> Settings:
    """The current app's settings."""
    return cast(Settings, current_app.extensions["botyard.settings"])


def redis_client() -> Redis:
    """The current app's Redis client (short timeouts: a dead Redis fails fast)."""
    return cast(Redis, current_app.extensions["botyard.redis"])
