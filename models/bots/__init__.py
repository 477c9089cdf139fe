"""Bots: definitions, live paper runs, ticks, schedules, results and execution logs."""
