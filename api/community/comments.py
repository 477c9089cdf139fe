"""Comments: ``GET|POST /bots/{id}/comments``, ``PATCH|DELETE /comments/{id}`` and
``GET /comments/{id}/replies`` (docs/community.md#comments).

Every path first asks whether the bot is one the caller may comment on (``community_bot``:
theirs, or a public bot they may see): a comment on any other bot is as unknown as a missing
one. Someone the bot's owner blocked may
read but not comment (403), and nobody may reply to a comment whose author blocked them.
"""

from __future__ import annotations

import uuid
from typing import Any

import marshmallow as ma
from flask.views import MethodView

from api import time_cursor as cursors
from api.access import authenticated, current_user
from api.community import blp
from api.community.comment_schemas import (
    CommentIn,
    CommentListOut,
    CommentOut,
    CommentPatch,
    CommentQuery,
    ReplyListOut,
)
from api.community.limits import action_limit
from api.errors import ErrorOut
from api.pagination import cursor_page
from api.people.activity import track
from models.bots.bots import Bot, community_bot
from models.community.blocks import has_blocked, notify_unless_blocked
from models.community.comments import (
    NO_COMMENT,
    Refused,
    author_names,
    create_comment,
    delete_comment,
    edit_comment,
    locked_parent,
    replies_page,
    shown_comment,
    threads,
    top_level_page,
)
from models.community.tables import Comment
from models.db import session as db
from models.errors import NotFound

BOT_NOT_FOUND = "No bot with that id that I may see"
COMMENT_NOT_FOUND = "No comment with that id that I may see"
LIMITED = "Too many comments and edits: try again after Retry-After seconds"
NOT_HERE = "You cannot comment here."


def comment_view(
    comment: Comment, viewer_id: uuid.UUID, names: dict[uuid.UUID, str]
) -> dict[str, Any]:
    """The body of one comment as ``viewer_id`` sees it (a placeholder once deleted)."""
    deleted = comment.deleted_at is not None
    return {
        "id": comment.id,
        "bot_id": comment.bot_id,
        "parent_id": comment.parent_id,
        "author": None if deleted else {"username": names[comment.author_id]},
        "body": None if deleted else comment.body,
        "deleted": deleted,
        "hidden": comment.hidden_at is not None,
        "mine": not deleted and comment.author_id == viewer_id,
        "created_at": comment.created_at,
        "edited_at": None if deleted else comment.edited_at,
    }


def _page_cursor(comment: Comment) -> str:
    return cursors.encode(comment.created_at, comment.id)


def _commentable(comment_id: uuid.UUID, viewer_id: uuid.UUID) -> tuple[Comment, Bot]:
    """A live comment the viewer is shown, on a bot they may see; else one 404."""
    comment = shown_comment(comment_id, viewer_id)
    try:
        bot, _ = community_bot(viewer_id, comment.bot_id)
    except NotFound:
        raise NotFound(NO_COMMENT) from None
    return comment, bot


def _notify(comment: Comment, bot: Bot, parent: Comment | None, by: str) -> None:
    """Tell the bot's owner, and a reply's parent author, once each; never oneself."""
    if parent is not None:
        notify_unless_blocked(
            comment.author_id,
            parent.author_id,
            "comment.replied",
            {
                "bot_id": str(bot.id),
                "comment_id": str(comment.id),
                "parent_id": str(parent.id),
                "by": by,
            },
        )
    if parent is None or parent.author_id != bot.owner_id:
        notify_unless_blocked(
            comment.author_id,
            bot.owner_id,
            "bot.commented",
            {"bot_id": str(bot.id), "bot_name": bot.name, "comment_id": str(comment.id), "by": by},
        )


@blp.route("/bots/<uuid:bot_id>/comments")
class BotComments(MethodView):
    @authenticated
    @blp.doc(operationId="listBotComments")
    @blp.arguments(CommentQuery(), location="query", unknown=ma.RAISE)
    @blp.response(200, CommentListOut)
    @blp.alt_response(404, schema=ErrorOut, description=BOT_NOT_FOUND)
    def get(self, query: dict[str, Any], bot_id: uuid.UUID) -> dict[str, Any]:
        """A bot's top-level comments, oldest first, each with its first replies (cursor paged)."""
        viewer_id = current_user().id
        community_bot(viewer_id, bot_id)
        after = cursors.decode(query.get("cursor"))
        rows, next_cursor = cursor_page(
            lambda n: top_level_page(bot_id, viewer_id, after, n), query["limit"], _page_cursor
        )
        replies = threads([c.id for c in rows], viewer_id)
        names = author_names(rows + [r for t in replies.values() for r in t.first])
        items = []
        for comment in rows:
            thread = replies.get(comment.id)
            items.append(
                {
                    **comment_view(comment, viewer_id, names),
                    "reply_count": thread.count if thread else 0,
                    "replies": [comment_view(r, viewer_id, names) for r in thread.first]
                    if thread
                    else [],
                }
            )
        return {"items": items, "next_cursor": next_cursor}

    @authenticated
    @action_limit("comment")
    @blp.doc(operationId="createComment")
    @blp.arguments(CommentIn())
    @blp.response(201, CommentOut)
    @blp.alt_response(
        403, schema=ErrorOut, description="Blocked by the bot's owner or the parent's author"
    )
    @blp.alt_response(404, schema=ErrorOut, description=BOT_NOT_FOUND)
    @blp.alt_response(
        422, schema=ErrorOut, description="Empty, too long, control characters, or a bad parent"
    )
    @blp.alt_response(429, schema=ErrorOut, description=LIMITED)
    def post(self, data: dict[str, Any], bot_id: uuid.UUID) -> dict[str, Any]:
        """Comment on my bot or a public bot I may see, or reply to a top-level comment of it."""
        user = current_user()
        bot, _ = community_bot(user.id, bot_id)
        if has_blocked(bot.owner_id, user.id):
            raise Refused(NOT_HERE)
        parent = None
        if data.get("parent_id") is not None:
            parent = locked_parent(bot.id, data["parent_id"], user.id)
            if has_blocked(parent.author_id, user.id):
                raise Refused(NOT_HERE)
        comment = create_comment(bot.id, user.id, data["body"], parent)
        _notify(comment, bot, parent, user.username)
        db.commit()
        track(
            "comment.created",
            object_type="comment",
            object_id=comment.id,
            data={"bot_id": str(bot.id)},
        )
        return comment_view(comment, user.id, {user.id: user.username})


@blp.route("/comments/<uuid:comment_id>")
class CommentById(MethodView):
    @authenticated
    @action_limit("comment")
    @blp.doc(operationId="updateComment")
    @blp.arguments(CommentPatch())
    @blp.response(200, CommentOut)
    @blp.alt_response(403, schema=ErrorOut, description="Not my comment")
    @blp.alt_response(404, schema=ErrorOut, description=COMMENT_NOT_FOUND)
    @blp.alt_response(409, schema=ErrorOut, description="Hidden by moderation")
    @blp.alt_response(422, schema=ErrorOut, description="Empty, too long or control characters")
    @blp.alt_response(429, schema=ErrorOut, description=LIMITED)
    def patch(self, data: dict[str, Any], comment_id: uuid.UUID) -> dict[str, Any]:
        """Change the text of my comment (sets `edited_at`)."""
        user = current_user()
        comment, _ = _commentable(comment_id, user.id)
        if comment.author_id != user.id:
            raise Refused("Only its author can edit a comment.")
        edit_comment(comment, data["body"])
        db.commit()
        return comment_view(comment, user.id, {user.id: user.username})

    @authenticated
    @blp.doc(operationId="deleteComment")
    @blp.response(204)
    @blp.alt_response(403, schema=ErrorOut, description="Neither my comment nor on my bot")
    @blp.alt_response(404, schema=ErrorOut, description=COMMENT_NOT_FOUND)
    def delete(self, comment_id: uuid.UUID) -> None:
        """Delete my comment, or any comment on my bot (kept as a placeholder for its replies)."""
        user = current_user()
        comment, bot = _commentable(comment_id, user.id)
        if user.id not in (comment.author_id, bot.owner_id):
            raise Refused("Only its author or the bot's owner can delete a comment.")
        delete_comment(comment)
        db.commit()


@blp.route("/comments/<uuid:comment_id>/replies")
class CommentReplies(MethodView):
    @authenticated
    @blp.doc(operationId="listCommentReplies")
    @blp.arguments(CommentQuery(), location="query", unknown=ma.RAISE)
    @blp.response(200, ReplyListOut)
    @blp.alt_response(404, schema=ErrorOut, description=COMMENT_NOT_FOUND)
    def get(self, query: dict[str, Any], comment_id: uuid.UUID) -> dict[str, Any]:
        """Every reply to a top-level comment, oldest first (cursor paged)."""
        viewer_id = current_user().id
        parent = db.get(Comment, comment_id)
        # A placeholder still lists its replies; a hidden parent only to its author.
        if parent is None or parent.parent_id is not None:
            raise NotFound(NO_COMMENT)
        if parent.hidden_at is not None and parent.author_id != viewer_id:
            raise NotFound(NO_COMMENT)
        try:
            community_bot(viewer_id, parent.bot_id)
        except NotFound:
            raise NotFound(NO_COMMENT) from None
        after = cursors.decode(query.get("cursor"))
        rows, next_cursor = cursor_page(
            lambda n: replies_page(parent.id, viewer_id, after, n), query["limit"], _page_cursor
        )
        names = author_names(rows)
        return {
            "items": [comment_view(c, viewer_id, names) for c in rows],
            "next_cursor": next_cursor,
        }
