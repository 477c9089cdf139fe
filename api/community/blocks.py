"""Blocks: block and unblock someone, and my list of blocked users.

A block reaches any account by name, private profile or not: protection must not depend
on the other's settings. It ends the follows between the two (docs/community.md, "Blocks").
"""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask.views import MethodView

from api.access import authenticated, current_user
from api.community import blp
from api.community.follows import people_body
from api.community.limits import action_limit
from api.community.people_schemas import BlockStateOut, PeopleListOut, PeopleQuery
from api.errors import ErrorOut
from api.people.activity import track
from models.community.blocks import block, blocks_page, unblock
from models.community.people import existing_account
from models.db import session as db

NOT_FOUND = "No user with that name"


@blp.route("/users/<string:username>/block")
class UserBlock(MethodView):
    @authenticated
    @action_limit("follow")
    @blp.doc(operationId="blockUser")
    @blp.response(200, BlockStateOut)
    @blp.alt_response(404, schema=ErrorOut, description=NOT_FOUND)
    @blp.alt_response(422, schema=ErrorOut, description="That is me")
    def put(self, username: str) -> dict[str, Any]:
        """Block someone: no follows, comments or notifications between us (idempotent)."""
        me = current_user()
        user = existing_account(username)
        if block(me.id, user.id):
            track("user.blocked", object_type="user", object_id=user.id)
        db.commit()
        return {"username": user.username, "blocked": True}

    @authenticated
    @action_limit("follow")
    @blp.doc(operationId="unblockUser")
    @blp.response(204)
    @blp.alt_response(404, schema=ErrorOut, description=NOT_FOUND)
    def delete(self, username: str) -> None:
        """Lift my block of someone (not blocking them already is fine)."""
        me = current_user()
        user = existing_account(username)
        if unblock(me.id, user.id):
            track("user.unblocked", object_type="user", object_id=user.id)
        db.commit()


@blp.route("/me/blocks")
class MyBlocks(MethodView):
    @authenticated
    @blp.doc(operationId="listMyBlocks")
    @blp.arguments(PeopleQuery(), location="query", unknown=ma.RAISE)
    @blp.response(200, PeopleListOut)
    def get(self, query: dict[str, Any]) -> dict[str, Any]:
        """The users I blocked, newest block first, paged by cursor."""
        return people_body(blocks_page, current_user().id, query)
