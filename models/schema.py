"""Every model module, imported so ``Base.metadata`` describes the whole schema.

Alembic's env.py and the migration tests import this module.
"""

from __future__ import annotations

from models import backtests, bot_runs, bot_ticks, bots, execution_logs, identity, market
from models.db import Base

MODEL_MODULES = (identity, market, bots, bot_runs, bot_ticks, execution_logs, backtests)
metadata = Base.metadata
