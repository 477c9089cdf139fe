"""Alembic environment: run by ``flask db ...`` inside the app (engine from Settings).

Tests may hand in a live connection through ``config.attributes["connection"]``.
"""

import logging

from alembic import context
from flask import current_app

from models import db
from models.schema import metadata

config = context.config
logger = logging.getLogger("alembic.env")


def _skip_empty_autogenerate(_context, _revision, directives):
    # `flask db migrate` with no model changes should not write an empty revision.
    if getattr(config.cmd_opts, "autogenerate", False) and directives[0].upgrade_ops.is_empty():
        directives[:] = []
        logger.info("No changes in schema detected.")


def run_migrations_offline():
    """Emit SQL for ``flask db upgrade --sql``."""
    url = db.get_engine().url.render_as_string(hide_password=False)
    context.configure(url=url, target_metadata=metadata, literal_binds=True, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


def _run_with(connection):
    conf_args = dict(current_app.extensions["migrate"].configure_args)
    conf_args.setdefault("process_revision_directives", _skip_empty_autogenerate)
    conf_args.setdefault("compare_type", True)
    context.configure(connection=connection, target_metadata=metadata, **conf_args)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online():
    """Run against the app's database (or the connection a test passed in)."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _run_with(connection)
        return
    with db.get_engine().connect() as connection:
        _run_with(connection)


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
