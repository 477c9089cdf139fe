"""Persistence: SQLAlchemy 2 typed models, the session, and query helpers."""
