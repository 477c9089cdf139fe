"""The calling user's own profile."""

from flask_smorest import Blueprint

blp = Blueprint("me", __name__, url_prefix="/api/v1/me", description="My account")

from api.me import routes  # noqa: E402,F401  (registers the views on blp)
