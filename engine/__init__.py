"""Pure domain code (indicators, strategies, backtester, metrics, providers).

Nothing here imports Flask, SQLAlchemy, Redis or the rest of the project.
"""
