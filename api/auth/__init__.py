"""Registration, login, token refresh, logout, sessions, password reset and change."""

from flask_smorest import Blueprint

blp = Blueprint("auth", __name__, url_prefix="/api/v1/auth", description="Accounts and sessions")

from api.auth import password, routes  # noqa: E402,F401  (registers the views on blp)
