"""Admin request and response bodies."""

from __future__ import annotations

import marshmallow as ma

from api.pagination import page_schema
from api.schemas import PageQuery, StrictSchema, UserOut, one_of
from models.identity.rbac import ROLES


class UserSearchQuery(PageQuery):
    """Search accounts by email, username or display name."""

    q = ma.fields.String(validate=ma.validate.Length(max=100))


class RolesIn(StrictSchema):
    """The complete set of roles the user should hold."""

    roles = ma.fields.List(
        ma.fields.String(**one_of(sorted(ROLES))),
        required=True,
        validate=ma.validate.Length(min=1, max=len(ROLES)),
    )


UserPageOut = page_schema(UserOut, "UserPage")
