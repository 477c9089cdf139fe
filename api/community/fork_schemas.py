"""The body of a fork (api/community/forks.py); the answer is the new bot (BotOut)."""

from __future__ import annotations

import marshmallow as ma

from api.schemas import StrictSchema
from models.community.forks import MAX_NAME


class ForkIn(StrictSchema):
    """A fork; every field optional (send `{}`)."""

    name = ma.fields.String(
        validate=ma.validate.Length(min=1, max=MAX_NAME),
        metadata={
            "description": "the fork's name; default: the source's, or `<name> (fork)`, "
            "`<name> (fork 2)`, ... when I have a bot of that name (a name I give must be free)"
        },
    )
