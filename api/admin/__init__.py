"""Administration of accounts: search, roles, disable/enable."""

from flask_smorest import Blueprint

blp = Blueprint("admin", __name__, url_prefix="/api/v1/admin", description="Administration")

from api.admin import audit, routes  # noqa: E402,F401  (registers the views on blp)
