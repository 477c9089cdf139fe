"""People: my account (profile, settings, notifications, webhooks, events, activity,
export, deletion) under ``/api/v1/me`` and public profiles under ``/api/v1/users``."""

from flask_smorest import Blueprint

blp = Blueprint("me", __name__, url_prefix="/api/v1/me", description="My account")
users_blp = Blueprint("users", __name__, url_prefix="/api/v1/users", description="People")

# Each module registers its views on the blueprints above.
from api.people import (  # noqa: E402,F401
    activity_routes,
    deletion,
    email_change,
    events,
    exports,
    notifications,
    profiles,
    settings,
    webhooks,
)
