"""The feed: what the users I follow did in public, newest first (``GET /api/v1/feed``).

One query per page reads the items, checked against who may see what now, and one more
names their bots (models/community/feed.py; docs/community.md, "The feed").
"""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask.views import MethodView

from api.access import authenticated, current_user
from api.community import blp
from api.community.feed_schemas import FeedListOut, FeedQuery, feed_item
from api.extensions import settings
from api.pagination import cursor_page
from models.community.feed import bot_summaries, feed_page


@blp.route("/feed")
class Feed(MethodView):
    @authenticated
    @blp.doc(operationId="getFeed")
    @blp.arguments(FeedQuery(), location="query", unknown=ma.RAISE)
    @blp.response(200, FeedListOut)
    def get(self, query: dict[str, Any]) -> dict[str, Any]:
        """New public bots, forks, comments and leaderboard placings of the users I follow."""
        viewer = current_user().id
        top_n = settings().leaderboard_notify_top_n
        rows, next_cursor = cursor_page(
            lambda n: feed_page(viewer, query.get("cursor"), n, top_n),
            query["limit"],
            lambda row: row.key,
        )
        ids = {row.bot_id for row in rows} | {row.fork_id for row in rows if row.fork_id}
        bots = bot_summaries(ids)
        items = [feed_item(row, bots) for row in rows]
        return {"items": [item for item in items if item is not None], "next_cursor": next_cursor}
