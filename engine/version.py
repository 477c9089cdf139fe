"""Version of the engine's results: bump it whenever the same inputs could give other trades.

Stored with every backtest so a result can say which fill model and signals produced it.
The metric definitions have their own version, ``engine.metrics.METRICS_VERSION``.
"""

ENGINE_VERSION = "1"
