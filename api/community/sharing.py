"""Share links: my bot's links (make, list, revoke) and the public page a link opens.

A link's token is in the response that makes it and nowhere else: the database keeps
its SHA-256, the access log the path without it (api/request_context.py). Every link
that does not work answers one 404 (docs/community.md#share-links).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import marshmallow as ma
from flask.views import MethodView

from api import time_cursor as cursors
from api.access import authenticated, current_user, public
from api.bots.cards import bot_cards
from api.community import blp
from api.community.limits import action_limit
from api.community.sharing_schemas import (
    SharedBotOut,
    ShareLinkCreatedOut,
    ShareLinkIn,
    ShareLinkListOut,
    ShareLinkQuery,
)
from api.errors import ErrorOut
from api.extensions import settings
from api.pagination import cursor_page
from api.people.activity import track
from api.ratelimit import client_ip, limiter, setting
from models.bots.bots import Bot, get_owned_bot
from models.community.sharing import (
    LINK_NOT_FOUND,
    create_share_link,
    link_status,
    list_share_links,
    revoke_share_link,
    view_shared_bot,
)
from models.community.tables import ShareLink
from models.db import session as db

NOT_FOUND = "No such bot of mine"
SHARED_PATH = "/api/v1/shared/"
# A revoked link must stop working at once: no browser or proxy may keep its answer.
NO_STORE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}


def link_view(link: ShareLink, now: datetime) -> dict[str, Any]:
    """A link as its owner reads it (never the token)."""
    return {
        "id": link.id,
        "scope": link.scope,
        "label": link.label,
        "status": link_status(link, now),
        "expires_at": link.expires_at,
        "revoked_at": link.revoked_at,
        "views": link.views,
        "last_viewed_at": link.last_viewed_at,
        "created_at": link.created_at,
    }


def _cursor_of(link: ShareLink) -> str:
    return cursors.encode(link.created_at, link.id)


def configuration(bot: Bot) -> dict[str, Any]:
    """What a `view` link shows of how the bot trades (nothing of its owner or its account)."""
    return {
        "symbol": bot.instrument.symbol,
        "timeframe": bot.timeframe,
        "strategy": bot.strategy,
        "risk": bot.risk,
        "initial_capital": bot.initial_capital,
        "fee": bot.fee,
        "slippage_bps": bot.slippage_bps,
    }


@blp.route("/bots/<uuid:bot_id>/sharing")
class BotShareLinks(MethodView):
    @authenticated
    @blp.doc(operationId="listShareLinks")
    @blp.arguments(ShareLinkQuery(), location="query", unknown=ma.RAISE)
    @blp.response(200, ShareLinkListOut)
    @blp.alt_response(404, schema=ErrorOut, description=NOT_FOUND)
    @blp.alt_response(422, schema=ErrorOut, description="Not a cursor this list gave out")
    def get(self, query: dict[str, Any], bot_id: uuid.UUID) -> dict[str, Any]:
        """My bot's share links, newest first (cursor paged; tokens are never shown again)."""
        bot = get_owned_bot(current_user().id, bot_id)
        before, now = cursors.decode(query.get("cursor")), datetime.now(UTC)
        rows, next_cursor = cursor_page(
            lambda n: list_share_links(bot.id, before, n), query["limit"], _cursor_of
        )
        return {"items": [link_view(link, now) for link in rows], "next_cursor": next_cursor}

    @authenticated
    @action_limit("share_link")
    @blp.doc(operationId="createShareLink")
    @blp.arguments(ShareLinkIn())
    @blp.response(201, ShareLinkCreatedOut)
    @blp.alt_response(404, schema=ErrorOut, description=NOT_FOUND)
    @blp.alt_response(409, schema=ErrorOut, description="The bot has too many working links")
    @blp.alt_response(422, schema=ErrorOut, description="Invalid scope, expiry or label")
    @blp.alt_response(429, schema=ErrorOut, description="Too many links made; see Retry-After")
    def post(self, data: dict[str, Any], bot_id: uuid.UUID) -> dict[str, Any]:
        """Make a share link of my bot; its token and URL are in this answer only."""
        user, now = current_user(), datetime.now(UTC)
        bot = get_owned_bot(user.id, bot_id)
        link, token = create_share_link(bot, user.id, now=now, **data)
        db.commit()
        track(
            "share_link.created",
            object_type="share_link",
            object_id=link.id,
            data={"bot_id": str(bot.id), "scope": link.scope},
        )
        return {
            **link_view(link, now),
            "token": token,
            "url": f"{settings().frontend_url}/shared/{token}",
            "api_path": f"{SHARED_PATH}{token}",
        }


@blp.route("/bots/<uuid:bot_id>/sharing/<uuid:link_id>")
class BotShareLinkById(MethodView):
    @authenticated
    @blp.doc(operationId="revokeShareLink")
    @blp.response(204)
    @blp.alt_response(404, schema=ErrorOut, description="No such link of my bot")
    def delete(self, bot_id: uuid.UUID, link_id: uuid.UUID) -> None:
        """Revoke my bot's share link: it stops working at once (again: no change)."""
        bot = get_owned_bot(current_user().id, bot_id)
        revoke_share_link(bot.id, link_id, datetime.now(UTC))
        db.commit()
        track(
            "share_link.revoked",
            object_type="share_link",
            object_id=link_id,
            data={"bot_id": str(bot.id)},
        )


@blp.route("/shared/<string:token>")
class SharedBot(MethodView):
    @limiter.limit(setting("rate_limit_shared_view"), key_func=client_ip, scope="shared-view")
    @public
    @blp.doc(operationId="getSharedBot", security=[])
    @blp.response(200, SharedBotOut)
    @blp.alt_response(404, schema=ErrorOut, description=LINK_NOT_FOUND)
    @blp.alt_response(429, schema=ErrorOut, description="Too many views from this address")
    def get(self, token: str) -> tuple[dict[str, Any], int, dict[str, str]]:
        """A bot through its share link: the card, and the configuration if the scope allows."""
        link, bot = view_shared_bot(token, datetime.now(UTC))
        db.commit()
        [card] = bot_cards([bot])
        body = {
            "scope": link["scope"],
            "expires_at": link["expires_at"],
            "bot": card,
            "configuration": configuration(bot) if link["scope"] == "view" else None,
        }
        return body, 200, NO_STORE
