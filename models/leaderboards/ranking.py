"""The ranking formula (public and versioned): what each board sorts on and how ties break.

Formula 1 (docs/leaderboards.md#formula): a board is a period and a metric; its score is
the metric of the bot's snapshot for that period (``return`` is the period's total
return). Only eligible bots with a finite score are ranked. Higher is better; ties go to
the longer track (days tracked in the period), then the older bot, then the smaller bot
id, so the same inputs always give the same board. Instrument and strategy ranks are the
same order within the bot's instrument and strategy family.

The formula is applied by Postgres (models/leaderboards/partitions.py): these constants
are its whole definition.
"""

from __future__ import annotations

FORMULA_VERSION = "1"
# Which snapshot column (run_performance) each board metric ranks on.
SCORE_COLUMNS = {"return": "total_return", "sharpe": "sharpe", "psr": "psr", "calmar": "calmar"}
# The order of a board: the score, then the tie-breaks (uuids compare bytewise, as in Python).
ORDER_BY = "score DESC, days_tracked DESC, created_at, bot_id"
