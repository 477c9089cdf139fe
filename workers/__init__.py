"""RQ job functions, the worker and scheduler entry points, and enqueue helpers."""
