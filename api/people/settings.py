"""Account settings: read the whole document, replace it (PUT) or merge a part in (PATCH)."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView

from api.access import authenticated, current_user
from api.errors import ErrorOut
from api.people import blp
from api.people.activity import track
from api.people.settings_schemas import (
    AccountSettingsIn,
    AccountSettingsOut,
    AccountSettingsPatch,
)
from models.db import session as db
from models.errors import Invalid
from models.people.preferences import (
    changed_keys,
    default_settings,
    effective_settings,
    lock_settings,
    merge,
    save_settings,
    security_problems,
)


def _store(changes: dict[str, Any], *, replace: bool) -> dict[str, Any]:
    """Lay ``changes`` over the defaults (PUT) or over my settings (PATCH), check, save."""
    user = current_user()
    row = lock_settings(user.id)
    before = merge(default_settings(), row.document)
    after = merge(default_settings() if replace else before, changes)
    problems = security_problems(after)
    if problems:
        raise Invalid("Security events are always emailed.", errors={"json": problems})
    save_settings(row, after)
    keys = changed_keys(before, after)
    if keys:
        track("settings.changed", object_type="user", object_id=user.id, data={"keys": keys})
    db.commit()
    return after


@blp.route("/settings")
class MySettings(MethodView):
    @authenticated
    @blp.doc(operationId="getSettings")
    @blp.response(200, AccountSettingsOut)
    def get(self) -> dict[str, Any]:
        """My whole settings document (defaults where I changed nothing)."""
        return effective_settings(current_user().id)

    @authenticated
    @blp.doc(operationId="replaceSettings")
    @blp.arguments(AccountSettingsIn())
    @blp.response(200, AccountSettingsOut)
    @blp.alt_response(422, schema=ErrorOut, description="Missing, unknown or invalid keys")
    def put(self, data: dict[str, Any]) -> dict[str, Any]:
        """Replace my whole settings document (every key required); returns it."""
        return _store(data, replace=True)

    @authenticated
    @blp.doc(operationId="updateSettings")
    @blp.arguments(AccountSettingsPatch())
    @blp.response(200, AccountSettingsOut)
    @blp.alt_response(422, schema=ErrorOut, description="Unknown or invalid keys")
    def patch(self, data: dict[str, Any]) -> dict[str, Any]:
        """Change some of my settings (nested objects merge key by key); returns the whole."""
        return _store(data, replace=False)
