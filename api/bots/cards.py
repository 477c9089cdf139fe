"""Public bot cards: a bot as anyone who may see it reads it (issue 14, item 5).

:func:`bot_cards` builds the cards of many bots in five queries whatever their number
(current runs, their snapshots, their reconciliations, the owners with their profile
setting, the community counts with the viewer's star and the fork lineage), so a profile,
a leaderboard page or a single bot cost the same few round trips. The card's keys are
:data:`CARD_KEYS` (api/bots/card_schemas.BotCardOut); nothing else of the bot or its owner
is read into it.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import exists, false, func, select
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.orm import aliased

from models.bots.bots import Bot
from models.bots.mirrors import BotMirror
from models.bots.runs import BotRun
from models.bots.strategy_specs import strategy_family
from models.community.tables import BotStar
from models.community.visible_bots import listed_to
from models.db import session as db
from models.identity.tables import User
from models.people.preferences import default_settings
from models.people.tables import AccountSettings
from models.performance.reconciliation_store import latest_reports
from models.performance.snapshots import snapshots_for
from models.performance.tables import PERIODS, RunPerformance

CARD_KEYS = frozenset(
    {
        "id",
        "name",
        "description",
        "symbol",
        "timeframe",
        "strategy_family",
        "visibility",
        "status",
        "metrics",
        "track",
        "owner",
        "reconciliation",
        "stars",
        "forks",
        "mirrors",
        "starred_by_me",
        "forked_from",
    }
)


def _utc(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def _current_runs(bot_ids: list[uuid.UUID]) -> dict[uuid.UUID, BotRun]:
    """Each bot's latest run (models.bots.runs.current_run's order), in one query."""
    rows = db.scalars(
        select(BotRun)
        .where(BotRun.bot_id.in_(bot_ids))
        .order_by(BotRun.bot_id, BotRun.started_at.desc(), BotRun.created_at.desc())
        .ext(distinct_on(BotRun.bot_id))
    )
    return {run.bot_id: run for run in rows}


def _metrics(run_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[dict[str, Any]]]:
    """Each run's snapshots as card metrics, in period order."""
    return {
        run_id: [_metric(by_period[p]) for p in PERIODS if p in by_period]
        for run_id, by_period in snapshots_for(run_ids).items()
    }


def _metric(row: RunPerformance) -> dict[str, Any]:
    """One snapshot's headline metrics, as the card shows them."""
    return {
        "period": row.period,
        "total_return": row.total_return,
        "sharpe": row.sharpe,
        "psr": row.psr,
        "max_drawdown": row.max_drawdown,
        "days_tracked": row.days_tracked,
        "trades": row.trades,
        "as_of": _utc(row.as_of_ts),
    }


def _reconciliations(run_ids: list[uuid.UUID]) -> dict[uuid.UUID, dict[str, Any]]:
    """Each run's latest finished reconciliation (any period), as the card shows it."""
    return {
        run_id: {
            "period": row.period,
            "diverged": row.diverged,
            "checked_at": row.computed_at,
            "equity_max_abs_diff": row.equity_max_abs_diff,
        }
        for run_id, row in latest_reports(run_ids).items()
    }


def _owners(owner_ids: list[uuid.UUID]) -> dict[uuid.UUID, dict[str, Any]]:
    """Each owner's public profile fields; display fields only for a public profile."""
    default = default_settings()["profile_visibility"]
    rows = db.execute(
        select(
            User.id,
            User.username,
            User.display_name,
            User.avatar_url,
            AccountSettings.document["profile_visibility"].astext,
        )
        .outerjoin(AccountSettings, AccountSettings.user_id == User.id)
        .where(User.id.in_(owner_ids))
    )
    owners = {}
    for user_id, username, display_name, avatar_url, visibility in rows:
        public = (visibility or default) == "public"
        owners[user_id] = {
            "username": username,
            "display_name": display_name if public else None,
            "avatar_url": avatar_url if public else None,
            "profile_url": f"/api/v1/users/{username}" if public else None,
        }
    return owners


def _community(bot_ids: list[uuid.UUID], viewer_id: uuid.UUID | None) -> dict[uuid.UUID, Any]:
    """Each bot's stars, forks, mirrors, the viewer's star and its source, in one query.

    Counts are rows counted now (never stored). Forks are the bots that still exist with
    this one as their source, whoever may see them. The source is named only when the
    viewer may be shown it unasked (models.community.visible_bots.listed_to): their own,
    or a public one; a private, unlisted or hidden source is null, as if not a fork.
    """
    fork, source = aliased(Bot), aliased(Bot)
    stars = select(func.count()).where(BotStar.bot_id == Bot.id).scalar_subquery()
    forks = select(func.count()).where(fork.forked_from_id == Bot.id).scalar_subquery()
    mirrors = select(func.count()).where(BotMirror.source_bot_id == Bot.id).scalar_subquery()
    starred = (
        exists().where(BotStar.bot_id == Bot.id, BotStar.user_id == viewer_id)
        if viewer_id is not None
        else false()
    )
    rows = db.execute(
        select(Bot.id, stars, forks, mirrors, starred, source.id, source.name)
        .outerjoin(source, (source.id == Bot.forked_from_id) & listed_to(viewer_id, source))
        .where(Bot.id.in_(bot_ids))
    )
    return {
        bot_id: {
            "stars": n_stars,
            "forks": n_forks,
            "mirrors": n_mirrors,
            "starred_by_me": bool(mine),
            "forked_from": {"id": src_id, "name": src_name} if src_id is not None else None,
        }
        for bot_id, n_stars, n_forks, n_mirrors, mine, src_id, src_name in rows
    }


def bot_cards(bots: Sequence[Bot], viewer_id: uuid.UUID | None = None) -> list[dict[str, Any]]:
    """The public cards of ``bots``, in their order (five queries for any number of bots).

    The caller decides who may see which bot (models.bots.bots.viewable_bot, a board's
    eligibility); a card carries no private field whoever reads it. ``viewer_id`` (None
    for someone not signed in) decides ``starred_by_me`` and whether ``forked_from``
    names the source.
    """
    if not bots:
        return []
    community = _community([bot.id for bot in bots], viewer_id)
    runs = _current_runs([bot.id for bot in bots])
    run_ids = [run.id for run in runs.values()]
    metrics = _metrics(run_ids) if run_ids else {}
    reconciled = _reconciliations(run_ids) if run_ids else {}
    owners = _owners(list({bot.owner_id for bot in bots}))
    cards = []
    for bot in bots:
        run = runs.get(bot.id)
        periods = metrics.get(run.id, []) if run is not None else []
        whole = next((m for m in periods if m["period"] == "all"), None)
        cards.append(
            {
                "id": bot.id,
                "name": bot.name,
                "description": bot.description,
                "symbol": bot.instrument.symbol,
                "timeframe": bot.timeframe,
                "strategy_family": strategy_family(bot.strategy),
                "visibility": bot.visibility,
                "status": bot.status,
                "metrics": periods,
                "track": None
                if run is None
                else {
                    "run_status": run.status,
                    "started_at": run.started_at,
                    "days_tracked": whole["days_tracked"] if whole is not None else None,
                },
                "owner": owners[bot.owner_id],
                "reconciliation": reconciled.get(run.id) if run is not None else None,
                **community[bot.id],
            }
        )
    return cards
