"""Backtests: frozen specs, status and progress, and their trades and equity."""
