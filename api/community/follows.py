"""Follows: follow and unfollow someone, and the lists of followers and followed.

Routes sit on the community blueprint with full paths (``/users/{username}/follow``), next
to the people blueprint's ``/users/{username}``. Whom one may follow, and who is listed,
is in docs/community.md ("Follows").
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import marshmallow as ma
from flask.views import MethodView

from api.access import authenticated, current_user, optional_viewer_id, public
from api.community import blp
from api.community.limits import action_limit
from api.community.people_schemas import (
    FollowStateOut,
    PeopleListOut,
    PeopleQuery,
    decode_cursor,
    encode_cursor,
    person_view,
)
from api.errors import ErrorOut
from api.pagination import cursor_page
from api.people.activity import track
from models.community.blocks import notify_unless_blocked
from models.community.follows import (
    follow,
    follow_counts,
    followers_page,
    following_page,
    unfollow,
)
from models.community.people import Keyset, PersonEntry, existing_account
from models.db import session as db
from models.people.profiles import visible_profile

NOT_FOUND = "No such user that I may see"
PageReader = Callable[[uuid.UUID, Keyset | None, int], list[PersonEntry]]


def people_body(read: PageReader, user_id: uuid.UUID, query: dict[str, Any]) -> dict[str, Any]:
    """One page of a people list read by ``read`` for ``user_id``, with its next cursor."""
    after = decode_cursor(query.get("cursor"))
    rows, next_cursor = cursor_page(
        lambda n: read(user_id, after, n), query["limit"], encode_cursor
    )
    return {"items": [person_view(row) for row in rows], "next_cursor": next_cursor}


@blp.route("/users/<string:username>/follow")
class UserFollow(MethodView):
    @authenticated
    @action_limit("follow")
    @blp.doc(operationId="followUser")
    @blp.response(200, FollowStateOut)
    @blp.alt_response(404, schema=ErrorOut, description=NOT_FOUND)
    @blp.alt_response(409, schema=ErrorOut, description="I blocked this user")
    @blp.alt_response(422, schema=ErrorOut, description="That is me")
    def put(self, username: str) -> dict[str, Any]:
        """Follow someone whose profile I may see (following again changes nothing)."""
        me = current_user()
        user = visible_profile(username, me.id)
        if follow(me.id, user.id):
            notify_unless_blocked(me.id, user.id, "user.followed", {"by": me.username})
            track("user.followed", object_type="user", object_id=user.id)
        db.commit()
        followers, _ = follow_counts(user.id)
        return {"username": user.username, "following": True, "followers": followers}

    @authenticated
    @action_limit("follow")
    @blp.doc(operationId="unfollowUser")
    @blp.response(204)
    @blp.alt_response(404, schema=ErrorOut, description="No user with that name")
    def delete(self, username: str) -> None:
        """Stop following someone, even one whose profile went private (idempotent)."""
        me = current_user()
        # Any account: someone who made their profile private must not stay followed.
        user = existing_account(username)
        if unfollow(me.id, user.id):
            track("user.unfollowed", object_type="user", object_id=user.id)
        db.commit()


@blp.route("/users/<string:username>/followers")
class UserFollowers(MethodView):
    @public
    @blp.doc(operationId="listUserFollowers", security=[])
    @blp.arguments(PeopleQuery(), location="query", unknown=ma.RAISE)
    @blp.response(200, PeopleListOut)
    @blp.alt_response(404, schema=ErrorOut, description=NOT_FOUND)
    def get(self, query: dict[str, Any], username: str) -> dict[str, Any]:
        """Who follows someone whose profile I may see, newest first, paged by cursor."""
        user = visible_profile(username, optional_viewer_id())
        return people_body(followers_page, user.id, query)


@blp.route("/users/<string:username>/following")
class UserFollowing(MethodView):
    @public
    @blp.doc(operationId="listUserFollowing", security=[])
    @blp.arguments(PeopleQuery(), location="query", unknown=ma.RAISE)
    @blp.response(200, PeopleListOut)
    @blp.alt_response(404, schema=ErrorOut, description=NOT_FOUND)
    def get(self, query: dict[str, Any], username: str) -> dict[str, Any]:
        """Whom someone whose profile I may see follows, newest first, paged by cursor."""
        user = visible_profile(username, optional_viewer_id())
        return people_body(following_page, user.id, query)


@blp.route("/me/followers")
class MyFollowers(MethodView):
    @authenticated
    @blp.doc(operationId="listMyFollowers")
    @blp.arguments(PeopleQuery(), location="query", unknown=ma.RAISE)
    @blp.response(200, PeopleListOut)
    def get(self, query: dict[str, Any]) -> dict[str, Any]:
        """Who follows me, newest first, paged by cursor."""
        return people_body(followers_page, current_user().id, query)


@blp.route("/me/following")
class MyFollowing(MethodView):
    @authenticated
    @blp.doc(operationId="listMyFollowing")
    @blp.arguments(PeopleQuery(), location="query", unknown=ma.RAISE)
    @blp.response(200, PeopleListOut)
    def get(self, query: dict[str, Any]) -> dict[str, Any]:
        """Whom I follow, newest first, paged by cursor."""
        return people_body(following_page, current_user().id, query)
