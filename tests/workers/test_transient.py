"""Transient errors fail the job for a retry; anything else is the bot's (or the row's) fault."""

from __future__ import annotations

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from rq.timeouts import JobTimeoutException
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from engine.params import ParamError
from workers.transient import backing_service, is_transient


def _dbapi(cls: type[DBAPIError], invalidated: bool = False) -> DBAPIError:
    return cls("SELECT 1", {}, Exception("boom"), connection_invalidated=invalidated)


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (_dbapi(OperationalError), True),  # connection lost, deadlock, statement timeout
        (_dbapi(DBAPIError, invalidated=True), True),
        (JobTimeoutException("too slow"), True),
        (RedisConnectionError("refused"), True),
        (_dbapi(IntegrityError), False),  # the row is wrong: retrying changes nothing
        (ResponseError("WRONGTYPE"), False),
        (ParamError({"fast": ["must be below slow"]}), False),
        (TypeError("bogus state"), False),
    ],
)
def test_what_counts_as_transient(error: BaseException, transient: bool) -> None:
    assert is_transient(error) is transient


@pytest.mark.parametrize(
    ("error", "service"),
    [
        (RedisConnectionError("refused"), "redis"),
        (_dbapi(OperationalError), "postgres"),
        (_dbapi(DBAPIError, invalidated=True), "postgres"),
        (JobTimeoutException("too slow"), None),  # transient for a job, but no service is away
        (ResponseError("NOGROUP"), None),
        (_dbapi(IntegrityError), None),
    ],
)
def test_which_service_an_error_says_is_away(error: BaseException, service: str | None) -> None:
    assert backing_service(error) == service
