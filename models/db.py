"""Declarative base, engine set-up and the thread-scoped session.

Importing this module reads no configuration: the process entry points call
:func:`configure` with the URL from ``Settings``. Tests rebind
``SessionFactory`` to a connection holding an outer transaction.
"""

from __future__ import annotations

from typing import Any

import orjson
import structlog
from sqlalchemy import MetaData, create_engine
from sqlalchemy.engine import Engine
from sqlalchemy.exc import PendingRollbackError
from sqlalchemy.orm import DeclarativeBase, Session, scoped_session, sessionmaker

# Stable constraint names, so autogenerate and downgrades agree across databases.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Base class of every model."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


SessionFactory = sessionmaker(expire_on_commit=False)
session: scoped_session[Session] = scoped_session(SessionFactory)

_engine: Engine | None = None

log = structlog.get_logger(__name__)


def make_engine(url: str, connect_timeout: int = 2, **kwargs: Any) -> Engine:
    """An engine whose connection attempts give up after ``connect_timeout`` seconds."""
    return create_engine(
        url,
        pool_pre_ping=True,
        pool_size=5,
        max_overflow=10,
        pool_timeout=connect_timeout,
        connect_args={"connect_timeout": connect_timeout},
        # JSONB columns parse with orjson: the same values as json.loads, several times faster
        # (a tick job reads three JSONB documents per bot).
        json_deserializer=orjson.loads,
        **kwargs,
    )


def configure(url: str, connect_timeout: int = 2) -> Engine:
    """Create the process's engine and bind the session factory to it."""
    global _engine  # noqa: PLW0603 - one engine per process, set by the entry point
    if _engine is not None:
        if _engine.url.render_as_string(hide_password=False) == url:
            SessionFactory.configure(bind=_engine)
            return _engine
        _engine.dispose()
    _engine = make_engine(url, connect_timeout)
    SessionFactory.configure(bind=_engine)
    return _engine


def get_engine() -> Engine:
    """The engine made by :func:`configure`."""
    if _engine is None:
        raise RuntimeError("models.db.configure() has not been called")
    return _engine


def raw_connection() -> Any:
    """The session's psycopg connection, inside the session's current transaction.

    For the bulk paths (``COPY``, plain cursors) that the ORM layer only slows down.
    """
    raw = session.connection().connection.driver_connection
    if raw is None:  # pragma: no cover - a live session always has a DBAPI connection
        raise RuntimeError("no database connection")
    return raw


# libpq's PQTRANS_ACTIVE: a statement is in progress on the connection (psycopg 3 and 2 alike).
_STATEMENT_IN_PROGRESS = 1


def end_session() -> None:
    """Remove this thread's session, first throwing away a connection left mid-statement.

    A job cut short inside a statement (RQ's timeout raises from a signal handler) leaves
    its connection busy: nothing more can be sent on it, not even the rollback that
    ``remove()`` issues, and the server goes on running the statement with the job's row
    locks held. Such a connection gets its statement cancelled on the server, so the locks
    go at once, and is invalidated, so the pool never hands it out again.
    """
    current = session.registry() if session.registry.has() else None
    if current is not None and current.in_transaction():
        try:
            connection = current.connection()
            raw: Any = connection.connection.dbapi_connection
            if raw is not None and raw.info.transaction_status == _STATEMENT_IN_PROGRESS:
                (getattr(raw, "cancel_safe", None) or raw.cancel)()
                connection.invalidate()
        except PendingRollbackError:
            pass  # its connection is already invalidated: the database went away mid-job
        except Exception:
            log.warning("busy_connection_not_cancelled", exc_info=True)
    try:
        session.remove()
    except Exception:
        log.warning("session_removal_failed", exc_info=True)
        session.registry.clear()
