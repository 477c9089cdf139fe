"""Performance: live runs' daily equity rollups, period snapshots and reconciliations."""
