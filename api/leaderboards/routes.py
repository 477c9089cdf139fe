"""Leaderboard views: a full board (authenticated), the cached preview (public), recompute (admin).

Decisions (docs/leaderboards.md): ``instrument`` and ``strategy`` may be combined; one of
them alone ranks by the stored instrument or strategy rank, both together by the overall
order counted among the matching bots. A cursor names its generation, so paging goes on
over the board it started on even after a new generation goes live; once that generation
is deleted the cursor gets a 410 and the client starts again.
"""

from __future__ import annotations

import base64
import time
from typing import Any, cast

import marshmallow as ma
import orjson
import structlog
from flask import Response, request, url_for
from flask.views import MethodView
from flask_smorest import abort
from redis.exceptions import RedisError

from api.access import authenticated, current_user, public, require_permission
from api.errors import ErrorOut
from api.extensions import redis_client
from api.leaderboards import blp
from api.leaderboards.schemas import BoardOut, BoardQuery, PreviewOut, RecomputeOut
from api.pagination import cursor_page
from api.people.activity import track
from api.ratelimit import limiter, setting
from models.leaderboards.preview_cache import CachedBody, Preview, read_preview, store_preview
from models.leaderboards.ranking import FORMULA_VERSION
from models.leaderboards.reads import (
    Board,
    active_generation,
    best_entry_of,
    board_rows,
    generation_exists,
    preview_rows,
)
from models.leaderboards.tables import LeaderboardGeneration
from workers.enqueue import enqueue_recompute, recompute_status

log = structlog.get_logger(__name__)

PREVIEW_TOP = 10
LOCATION = {"description": "Where to poll the job", "schema": {"type": "string"}}
GONE = (
    "That page's leaderboard generation has been replaced and deleted; "
    "start again without a cursor."
)


def entry_view(row: dict[str, Any]) -> dict[str, Any]:
    """An entry as the API shows it, from a row of models.leaderboards.reads."""
    previous = row["previous_rank"]
    return {
        "rank": int(row["board_rank"]),
        "overall_rank": row["rank"],
        "previous_rank": previous,
        "rank_change": previous - row["rank"] if previous is not None else None,
        "score": row["score"],
        "bot": {
            "id": row["bot_id"],
            "name": row["bot_name"],
            "symbol": row["instrument"],
            "timeframe": row["timeframe"],
            "strategy": row["strategy"],
        },
        "owner": {
            "username": row["username"],
            "display_name": row["display_name"],
            "profile_url": f"/api/v1/users/{row['username']}" if row["profile_public"] else None,
        },
        "components": row["components"],
    }


def encode_cursor(generation_id: int, position: int) -> str:
    """An opaque cursor: the generation and the last position served."""
    raw = orjson.dumps({"g": generation_id, "p": position})
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, int]:
    """(generation id, position) of a cursor; a 422 for anything that is not one."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = orjson.loads(raw)
        generation, position = data["g"], data["p"]
        if not all(isinstance(v, int) and 0 <= v < 2**62 for v in (generation, position)):
            raise ValueError
        return generation, position
    except (ValueError, TypeError, KeyError, orjson.JSONDecodeError):
        message = "That cursor is not one this endpoint gave out."
        abort(422, message=message, errors={"query": {"cursor": [message]}})
        raise  # unreachable: abort raises


def _empty_board(board: Board) -> dict[str, Any]:
    return {
        "generation_id": None,
        "generated_at": None,
        "formula_version": FORMULA_VERSION,
        "period": board.period,
        "metric": board.metric,
        "instrument": board.instrument,
        "strategy": board.strategy,
        "entries": [],
        "mine": None,
        "next_cursor": None,
    }


@blp.route("")
class Leaderboards(MethodView):
    @authenticated
    @blp.doc(operationId="getLeaderboard")
    @blp.arguments(BoardQuery(), location="query", unknown=ma.RAISE)
    @blp.response(200, BoardOut)
    @blp.alt_response(410, schema=ErrorOut, description="The cursor's generation was deleted")
    def get(self, query: dict[str, Any]) -> dict[str, Any]:
        """One board of the active generation, by rank, cursor paged (filters combine)."""
        board = Board(
            query["period"], query["metric"], query.get("instrument"), query.get("strategy")
        )
        after: int | None = None
        generation: LeaderboardGeneration | None
        if "cursor" in query:
            generation_id, after = decode_cursor(query["cursor"])
            generation = generation_exists(generation_id)
            if generation is None:
                abort(410, message=GONE)
        else:
            generation = active_generation()
        body = _empty_board(board)
        if generation is None:
            return body
        gen = generation
        rows, next_position = cursor_page(
            lambda n: board_rows(gen.id, board, after, n), query["limit"], lambda r: r["pos"]
        )
        mine = best_entry_of(gen.id, board, current_user().id)
        body.update(
            generation_id=gen.id,
            generated_at=gen.activated_at,
            entries=[entry_view(row) for row in rows],
            mine=entry_view(mine) if mine is not None else None,
            next_cursor=encode_cursor(gen.id, next_position) if next_position else None,
        )
        return body


def _preview_body(generation: LeaderboardGeneration | None) -> bytes:
    boards = preview_rows(generation.id, PREVIEW_TOP) if generation is not None else {}
    body = {
        "generation_id": generation.id if generation is not None else None,
        "generated_at": generation.activated_at if generation is not None else None,
        "formula_version": FORMULA_VERSION,
        "boards": [
            {"period": period, "metric": metric, "entries": [entry_view(r) for r in rows]}
            for (period, metric), rows in boards.items()
        ],
    }
    return orjson.dumps(PreviewOut().dump(body))


def _wants_gzip() -> bool:
    """Whether ``Accept-Encoding`` takes gzip (``*`` counts; ``gzip;q=0`` refuses it)."""
    return request.accept_encodings["gzip"] > 0


def _conditional(cached: CachedBody, gzipped: bool) -> Response:
    response = Response(cached.body, mimetype="application/json")
    response.headers["Cache-Control"] = "public, max-age=30"
    if gzipped:
        response.headers["Content-Encoding"] = "gzip"
    # Either encoding may answer this URL: shared caches must key on Accept-Encoding.
    response.vary.add("Accept-Encoding")
    response.set_etag(cached.etag)
    return cast(Response, response.make_conditional(request))


@blp.route("/preview")
class LeaderboardPreview(MethodView):
    @limiter.limit(setting("rate_limit_leaderboard_preview"), scope="leaderboard-preview")
    @public
    @blp.doc(operationId="getLeaderboardPreview", security=[])
    @blp.response(200, PreviewOut)
    @blp.alt_response(304, description="Not modified (If-None-Match)")
    def get(self) -> Response:
        """The top 10 of every default board, cached per generation, with a strong ETag."""
        # A hit is one HMGET of the generation and the body (models/leaderboards/
        # preview_cache.py): no Postgres, nothing serialised. gzip when the client takes it.
        gzipped = _wants_gzip()
        redis = redis_client()
        try:
            cached = read_preview(redis, gzipped)
            if cached is not None:
                return _conditional(cached, gzipped)
        except RedisError as exc:
            log.warning("leaderboard_preview_cache_unavailable", error_type=type(exc).__name__)
        read_at = time.monotonic()
        generation = active_generation()
        preview = Preview.of(
            generation.id if generation is not None else None, _preview_body(generation)
        )
        try:
            store_preview(redis, preview, read_at)
        except RedisError as exc:
            log.warning("leaderboard_preview_cache_unavailable", error_type=type(exc).__name__)
        return _conditional(preview.variant(gzipped), gzipped)


def _recompute_body(status: dict[str, Any]) -> dict[str, Any]:
    location = url_for("leaderboards.LeaderboardRecomputeJob", job_id=status["job_id"])
    return {**status, "location": location}


@blp.route("/recompute")
class LeaderboardRecompute(MethodView):
    @require_permission("leaderboards:manage")
    @blp.doc(operationId="recomputeLeaderboards")
    @blp.response(202, RecomputeOut, headers={"Location": LOCATION})
    @blp.alt_response(403, schema=ErrorOut, description="Missing permission")
    def post(self) -> tuple[dict[str, Any], int, dict[str, str]]:
        """Queue a recompute now (the same job while one is still queued); poll its Location."""
        job, created = enqueue_recompute(redis_client())
        if created:
            track("admin.leaderboards_recompute", object_type="job", object_id=job.id)
        status = recompute_status(redis_client(), job.id) or {
            "job_id": job.id,
            "status": "queued",
            "generation_id": None,
            "activated": None,
        }
        body = _recompute_body(status)
        return body, 202, {"Location": body["location"]}


@blp.route("/recompute/<string:job_id>")
class LeaderboardRecomputeJob(MethodView):
    @require_permission("leaderboards:manage")
    @blp.doc(operationId="getLeaderboardRecompute")
    @blp.response(200, RecomputeOut)
    @blp.alt_response(403, schema=ErrorOut, description="Missing permission")
    @blp.alt_response(404, schema=ErrorOut, description="No such recompute job (or expired)")
    def get(self, job_id: str) -> dict[str, Any]:
        """An on-demand recompute's status and, once finished, the generation it built."""
        status = recompute_status(redis_client(), job_id[:120])
        if status is None:
            abort(404, message="No recompute job with that id (finished ones expire after a day).")
        return _recompute_body(cast(dict[str, Any], status))
