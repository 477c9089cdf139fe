"""The app context jobs run in: settings, logging and the database, without the HTTP API."""

from __future__ import annotations

import os

from flask import Flask

from logconfig import configure_logging
from models import db
from settings import Settings


def create_worker_app(settings: Settings | None = None) -> Flask:
    """A minimal Flask app for workers and the scheduler (no blueprints, no JWT)."""
    settings = settings or Settings.from_env(os.environ)
    configure_logging(settings.log_level, settings.log_json)
    app = Flask("botyard.worker", static_folder=None)
    app.extensions["botyard.settings"] = settings
    db.configure(settings.database_url, settings.db_connect_timeout)
    return app
