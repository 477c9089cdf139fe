"""Which errors are transient: not a bot's or a row's fault, so the job fails and is retried.

A job that meets one of these counts nothing against any bot and lets RQ retry it with
backoff (the job's ``Retry``); the periodic sweeps pick up whatever the retries miss.
"""

from __future__ import annotations

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rq.timeouts import BaseTimeoutException
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

# Connection lost or refused, a deadlock, a serialization failure or a statement timeout
# (all OperationalError), the pool exhausted, Redis unreachable, and RQ's job timeout.
TRANSIENT = (
    OperationalError,
    InterfaceError,
    PoolTimeoutError,
    RedisConnectionError,
    RedisTimeoutError,
    BaseTimeoutException,
)


def is_transient(exc: BaseException) -> bool:
    """True for errors that are not the bot's fault and should fail the job, to be retried."""
    if isinstance(exc, TRANSIENT):
        return True
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


def backing_service(exc: BaseException) -> str | None:
    """``"redis"`` or ``"postgres"`` when ``exc`` means that service is unreachable, else None.

    A long-running process waits and retries on these (workers/outage.py); anything else
    is a bug or bad data, handled where it happens.
    """
    if isinstance(exc, RedisConnectionError | RedisTimeoutError):
        return "redis"
    if isinstance(exc, OperationalError | InterfaceError | PoolTimeoutError):
        return "postgres"
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return "postgres"
    return None
