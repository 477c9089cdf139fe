"""Leaderboards: generations of ranked public bots, their exclusions, and the reads over them."""
