"""Every table module, imported so ``Base.metadata`` describes the whole schema.

Alembic's env.py and the migration tests import this module.
"""

from __future__ import annotations

from models.backtests import backtests
from models.bots import bots, execution_logs, mirrors, runs, ticks
from models.community import tables as community_tables
from models.db import Base
from models.identity import tables as identity_tables
from models.leaderboards import tables as leaderboard_tables
from models.market import tables as market_tables
from models.people import tables as people_tables
from models.performance import tables as performance_tables

MODEL_MODULES = (
    identity_tables,
    market_tables,
    bots,
    mirrors,
    runs,
    ticks,
    execution_logs,
    backtests,
    people_tables,
    performance_tables,
    leaderboard_tables,
    community_tables,
)
metadata = Base.metadata
